"""prism.alerts against local stand-ins: a Slack incoming webhook (HTTP) and an SMTP server. What each
channel receives, which channels take an alert, the troubleshooting findings an alert carries, and the
Deadline Alert callback the triggerer runs."""

from __future__ import annotations

import asyncio
import email
import json
import logging
import socket
import socketserver
import threading
from email import policy
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
from airflow.sdk.execution_time.context import set_current_context
from airflow.utils.types import DagRunType

from prism.alerts import alert, deadline_missed, send_alert


@pytest.fixture
def slack(monkeypatch):
    """A Slack incoming-webhook stand-in on `prism_slack`; returns the JSON bodies it received."""
    received: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            received.append(json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0)))))
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/services/T000/B000/XXX"
    monkeypatch.setenv("AIRFLOW_CONN_PRISM_SLACK", json.dumps({"conn_type": "slackwebhook", "password": url}))
    yield received
    server.shutdown()
    server.server_close()


class _Smtp(socketserver.StreamRequestHandler):
    """Just enough SMTP to take a message: every command is accepted, DATA is kept."""

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self):
        self.reply("220 stand-in")
        while line := self.rfile.readline():
            verb = line.split(b" ")[0].strip().upper().decode()
            if verb == "DATA":
                self.reply("354 go on")
                data = b""
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    data += chunk[1:] if chunk.startswith(b"..") else chunk
                self.server.messages.append(email.message_from_bytes(data, policy=policy.default))
                self.reply("250 kept")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("250 ok")


def _smtp_conn(port: int) -> str:
    extra = {"to": ["ops@example.com"], "from_email": "prism@example.com", "disable_tls": True, "disable_ssl": True}
    return json.dumps({"conn_type": "smtp", "host": "127.0.0.1", "port": port, "extra": extra})


@pytest.fixture
def mailbox(monkeypatch):
    """An SMTP stand-in on `prism_smtp` (recipients in the extra); returns the messages it received."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Smtp)
    server.daemon_threads = True
    server.messages = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("AIRFLOW_CONN_PRISM_SMTP", _smtp_conn(server.server_address[1]))
    yield server.messages
    server.shutdown()
    server.server_close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_alert_goes_to_slack_and_email_through_the_notifiers(slack, mailbox):
    assert send_alert("disk <full> & more", "line 1\nline 2", severity="warning") == ["log", "slack", "email"]
    (body,) = slack
    assert body == {
        "text": "[PRISM WARNING] disk &lt;full&gt; &amp; more\nline 1\nline 2",
        "unfurl_links": False,
        "unfurl_media": False,
    }
    (mail,) = mailbox
    assert mail["To"] == "ops@example.com" and mail["From"] == "prism@example.com"
    assert mail["Subject"] == "[PRISM warning] disk <full> & more"
    html = next(p for p in mail.walk() if p.get_content_type() == "text/html").get_content()
    assert html == (
        '<pre style="white-space:pre-wrap">[PRISM WARNING] disk &lt;full&gt; &amp; more\nline 1\nline 2</pre>'
    )


def test_alert_text_is_never_a_template(slack, mailbox):
    """The notifiers render their fields as Jinja when called as notifiers; an alert's text is sent as it is."""
    send_alert("{{ 7 * 7 }} {% if true %}x{% endif %}", "{{ conn.prism_slack.password }}")
    assert slack[0]["text"] == "[PRISM ERROR] {{ 7 * 7 }} {% if true %}x{% endif %}\n{{ conn.prism_slack.password }}"
    assert mailbox[0]["Subject"] == "[PRISM error] {{ 7 * 7 }} {% if true %}x{% endif %}"


def test_a_channel_without_a_connection_is_skipped(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_PRISM_SLACK", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_PRISM_SMTP", raising=False)
    assert send_alert("only the log") == ["log"]


def test_a_failing_channel_is_logged_and_hides_no_other(slack, monkeypatch, caplog):
    monkeypatch.setenv("AIRFLOW_CONN_PRISM_SMTP", _smtp_conn(_closed_port()))
    with caplog.at_level(logging.ERROR, logger="prism.alerts"):
        assert send_alert("mail server down") == ["log", "slack"]
    assert slack[0]["text"] == "[PRISM ERROR] mail server down"
    assert any(r.getMessage().startswith("e-mail alert failed: ") for r in caplog.records)


def test_an_alert_carries_the_findings(cf, alerts):
    out = alert("error rate is high", "window x", "warning", ["slow_performance", "slow_performance"])
    assert [f["kind"] for f in out["findings"]] == ["slow_performance"]
    (text,) = alerts
    assert text.startswith("[PRISM WARNING] error rate is high\nwindow x\n\nDiagnosis: slow performance")
    assert "[ok] Cache hit rate and latency (/metrics)" in text or "[!!] Cache hit rate and latency (/metrics)" in text


def test_an_investigation_that_cannot_run_is_a_finding(slack):
    out = alert("checks failed", "", "error", ["everything"])
    assert out["sent"] == ["log", "slack"]
    (finding,) = out["findings"]
    assert finding["kind"] == "everything" and finding["steps"] == []
    assert finding["text"].startswith("Diagnosis: everything could not run: ValueError: unknown investigation")
    assert slack[0]["text"] == "[PRISM ERROR] checks failed\n" + slack_escaped(finding["text"])


def test_inside_a_backfill_the_alert_says_why_it_carries_no_findings(slack):
    with set_current_context({"dag_run": SimpleNamespace(run_type=DagRunType.BACKFILL_JOB)}):
        out = alert("error rate is high", "window x", "warning", ["high_error_rate", "slow_performance"])
    assert out == {"sent": ["log", "slack"], "findings": []}
    assert slack[0]["text"] == (
        "[PRISM WARNING] error rate is high\nwindow x\nNot investigated (high_error_rate, slow_performance): inside "
        "a backfill the findings would describe the present, not the run's window."
    )


CONTEXT = {
    "dag_run": {
        "dag_id": "prism_health_monitor",
        "dag_run_id": "scheduled__2026-01-01T00:05:00+00:00",
        "queued_at": "2026-01-01T00:05:01Z",
        "start_date": None,
        "state": "queued",
        "conf": {},
    },
    "deadline": {"id": "0199", "deadline_time": "2026-01-01T00:15:01Z"},
}


def test_the_deadline_callback_alerts_on_every_channel(slack, mailbox):
    """The triggerer awaits deadline_missed(context=...) in its event loop: the notifiers' async side."""
    assert asyncio.run(deadline_missed(context=CONTEXT)) == ["log", "slack", "email"]
    text = (
        "[PRISM ERROR] prism_health_monitor run scheduled__2026-01-01T00:05:00+00:00 missed its deadline\n"
        "deadline 2026-01-01T00:15:01Z; the run was queued at 2026-01-01T00:05:01Z, started at not yet, and is queued"
    )
    assert slack == [{"text": slack_escaped(text), "unfurl_links": False, "unfurl_media": False}]
    (mail,) = mailbox
    assert mail["Subject"] == text.partition("\n")[0].replace("ERROR", "error", 1)
    html = next(p for p in mail.walk() if p.get_content_type() == "text/html").get_content()
    assert html == f'<pre style="white-space:pre-wrap">{escape(text)}</pre>'


def test_the_deadline_callback_logs_when_no_channel_is_configured(monkeypatch, caplog):
    monkeypatch.delenv("AIRFLOW_CONN_PRISM_SLACK", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_PRISM_SMTP", raising=False)
    with caplog.at_level(logging.WARNING, logger="prism.alerts"):
        assert asyncio.run(deadline_missed(context=CONTEXT)) == ["log"]
    assert any("missed its deadline" in r.getMessage() for r in caplog.records)


def slack_escaped(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
