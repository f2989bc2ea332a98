"""Where the bundle's files are: the repository (or image) root, include/, the SQL templates and the pools file.

plugins/prism/settings/paths.py sits three levels below the root, in the repository and in the image alike."""

from __future__ import annotations

from pathlib import Path

BUNDLE = Path(__file__).resolve().parents[3]
INCLUDE = BUNDLE / "include"
SQL_DIR = str(INCLUDE / "sql")
POOLS_FILE = INCLUDE / "pools.json"
