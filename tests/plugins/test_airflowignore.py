"""The plugin manager imports every .py under plugins/ by its bare file name; the library package
must be ignored so that its modules (d1.py, kv.py, ...) never shadow other modules."""

from __future__ import annotations

from pathlib import Path

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"


def test_plugin_manager_skips_the_library_package():
    from airflow._shared.module_loading import find_path_from_directory

    scanned = [
        Path(p).relative_to(PLUGINS).as_posix()
        for p in find_path_from_directory(str(PLUGINS), ".airflowignore", "glob")
    ]
    assert not [p for p in scanned if p.startswith(("prism/", "prism_dashboard/"))]
    assert "prism_dashboard_plugin.py" in scanned  # the dashboard's AirflowPlugin is the one module loaded


def test_no_module_is_named_after_a_component_kind():
    banned = {"operator.py", "hook.py", "sensor.py", "trigger.py"}
    assert not [p for p in PLUGINS.rglob("*.py") if p.name in banned]
