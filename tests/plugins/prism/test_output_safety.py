"""What a person reads outside the dashboard is safe to look at: the HTML reports and their SVG
charts, the Markdown figures, and the alerts as Slack and e-mail show them. Hostile strings go into
every field; parsed as a browser would (html.parser), none of them is markup."""

from __future__ import annotations

import email
import json
import socketserver
import sys
import threading
from datetime import datetime, timedelta, timezone
from email import policy
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "prism_dashboard"))
from hostile import ALL, HOSTILE, LONG, assert_inert, text_of  # noqa: E402

from prism.reports.charts import bar_chart, empty_chart, line_chart, status_strip  # noqa: E402
from prism.reports.pages import chart, chart_markdown, render  # noqa: E402

PAST, NOW, FUTURE = (
    datetime(2019, 1, 1, tzinfo=timezone.utc),
    datetime.now(timezone.utc),
    datetime(2099, 12, 31, tzinfo=timezone.utc),
)


def _charts() -> list[str]:
    series = {v: [(PAST, 1.0), (NOW, 2.5), (FUTURE, 3.0)] for v in HOSTILE.values()}
    return [
        bar_chart(ALL, [(v, i + 0.5) for i, v in enumerate(HOSTILE.values())], y_label=ALL, colors={ALL: "#000"}),
        line_chart(
            ALL,
            series,
            ALL,
            limits={ALL: 2.0, HOSTILE["attr"]: 1.0},
            dashed={HOSTILE["script"]},
            markers=[(NOW, ALL), (FUTURE - timedelta(days=1), HOSTILE["style"])],
        ),
        status_strip(ALL, [(v, v) for v in HOSTILE.values()]),
        empty_chart(ALL),
    ]


@pytest.mark.parametrize("index", range(4))
def test_every_chart_label_title_and_tooltip_is_escaped(index):
    svg = _charts()[index]
    doc = assert_inert(svg, allowed_tags={"svg"}, style_elements=0)
    assert sum(t == "svg" for t, _ in doc.tags) == 1  # no second <svg> (and no onload) from a label
    assert HOSTILE["script"] in text_of(doc) and ALL in [a.get("aria-label") for t, a in doc.tags if t == "svg"]


def test_an_html_report_with_hostile_text_charts_and_links_is_inert():
    links = (
        "[click](javascript:alert(1)) <javascript:alert(2)> ![x](javascript:alert(3)) "
        "[d](data:text/html,<script>alert(4)</script>) <a href=x onclick=alert(5)>raw</a>"
    )
    body = "\n".join(f"- {v}" for v in HOSTILE.values())
    charts = [chart(ALL, svg, [(ALL, ALL), (HOSTILE["newlines"], HOSTILE["script"])]) for svg in _charts()]
    markdown = f"# {ALL}\n\n{body}\n\n{links}\n\n```\n</pre>{HOSTILE['script']}\n```\n" + "\n".join(
        chart_markdown(charts)
    )
    html = render(markdown, charts)
    doc = assert_inert(html, allowed_tags={"meta", "svg"})
    assert not [a for t, a in doc.tags if t == "a"]  # no link of a script, data: or raw-HTML kind survives
    assert HOSTILE["script"] in text_of(doc) and LONG in text_of(doc)
    assert [t for t, _ in doc.tags].count("title") == 1 + len(charts) + sum(
        svg.count("<title>") - 1 for svg in _charts()
    )


def test_chart_figures_in_markdown_stay_one_row_each():
    lines = chart_markdown([chart("a|b\nc", "<svg/>", [("x | y\n# heading", "1\n\n| 2 |")])])
    assert lines[1] == "**a\\|b c**" and lines[-1] == "| x \\| y # heading | 1 \\| 2 \\| |"
    html = render("# T\n" + "\n".join(lines), [])
    assert html.count("<tr>") == 2 and "<h1>heading" not in html


# ---- alerts --------------------------------------------------------------------------------------------------


class _Smtp(socketserver.StreamRequestHandler):
    """Just enough SMTP (RFC 5321, no TLS, no auth) to take one message and keep it."""

    def reply(self, line: str) -> None:
        self.wfile.write((line + "\r\n").encode())

    def handle(self):
        self.reply("220 stand-in ESMTP")
        while line := self.rfile.readline():
            verb = line.decode("utf-8", "replace").strip().upper()
            if verb.startswith(("EHLO", "HELO")):
                self.reply("250-stand-in\r\n250 8BITMIME")
            elif verb == "DATA":
                self.reply("354 go on")
                data = b""
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    data += chunk[1:] if chunk.startswith(b"..") else chunk
                self.server.messages.append(data)
                self.reply("250 kept")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("250 ok")


@pytest.fixture
def mailbox(monkeypatch):
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Smtp)
    server.daemon_threads = True
    server.messages = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv(
        "AIRFLOW_CONN_PRISM_SMTP",
        json.dumps(
            {
                "conn_type": "smtp",
                "host": "127.0.0.1",
                "port": server.server_address[1],
                "extra": {
                    "to": ["ops@example.com"],
                    "from_email": "prism@example.com",
                    "disable_tls": True,
                    "disable_ssl": True,
                },
            }
        ),
    )
    yield server.messages
    server.shutdown()
    server.server_close()


def _html_part(raw: bytes) -> str:
    msg = email.message_from_bytes(raw, policy=policy.default)
    return next(p for p in msg.walk() if p.get_content_type() == "text/html").get_content()


def test_an_email_alert_shows_hostile_subject_and_body_as_text(alerts, mailbox):
    from prism.alerts import send_alert

    body = "\n".join(HOSTILE.values())
    assert send_alert(ALL, body, severity="error") == ["log", "slack", "email"]
    (raw,) = mailbox
    html = _html_part(raw)
    doc = assert_inert(html, style_elements=0)
    assert [t for t, _ in doc.tags] == ["pre"]  # the body is one <pre> of text: nothing from the alert is an element
    text = text_of(doc)
    assert ALL in text and all(v in text for v in HOSTILE.values())
    subject = email.message_from_bytes(raw, policy=policy.default)["Subject"]
    assert "\n" not in subject and HOSTILE["script"] in subject  # one header line: no header of the alert's making


def test_slack_text_cannot_carry_links_mentions_or_markup(alerts):
    from prism.alerts import send_alert

    subject = "disk <!channel> <@U123> <https://evil.example|click for the logs> & <script>"
    send_alert(subject, HOSTILE["attr"] + "\n" + LONG, severity="warning")
    (text,) = alerts
    assert "<" not in text and ">" not in text  # Slack reads control sequences only between < and >
    assert "&lt;!channel&gt; &lt;@U123&gt; &lt;https://evil.example|click for the logs&gt; &amp; &lt;script&gt;" in text
    assert text.startswith("[PRISM WARNING] disk ") and text.endswith(
        "L" * 20 + "&lt;script&gt;alert('long')&lt;/script&gt;"
    )


def test_every_registered_secret_leaves_an_alert_as_stars(alerts, mailbox):
    """Whatever put a secret into an alert's text (an exception, a finding), Airflow's masker takes it
    out before Slack, e-mail, the log and the dashboard record see it."""
    from airflow.sdk.log import mask_secret

    from prism.alerts import send_alert

    secrets = ["jwt-secret-Zq9<&>", "fernet-key-0123456789abcdef=", "postgresql://airflow:pw-77x@db/airflow"]
    for secret in secrets:
        mask_secret(secret)
    send_alert(f"export failed with {secrets[0]}", "\n".join(secrets), severity="error")
    (slack,) = alerts
    (raw,) = mailbox
    mail = _html_part(raw)
    for secret in secrets:
        assert secret not in slack and secret not in mail
        assert slack_escape_of(secret) not in slack and escape_html_of(secret) not in mail
    assert "***" in slack and "***" in mail


def slack_escape_of(text: str) -> str:
    from prism.alerts import slack_escape

    return slack_escape(text)


def escape_html_of(text: str) -> str:
    from html import escape

    return escape(text)
