"""Alerts: the guide's `send-alert`, sent through the Slack and SMTP providers' notifiers.

Every alert is logged. It also goes to Slack (SlackWebhookNotifier on the incoming-webhook connection
`prism_slack`, type `slackwebhook`) and to e-mail (SmtpNotifier on the SMTP connection `prism_smtp`,
recipients from its extra `{"to": [...]}`) when those connections exist. Every secret Airflow knows is
masked first; Slack gets escaped text with unfurling off, e-mail an escaped <pre> with a one-line subject.
A channel that fails is logged; it never hides the others. An alert sent from a running task is also
recorded for the dashboard (dashboard_records).

- `send_alert`: one alert on every channel;
- `alert`: an alert with the findings of the guide's troubleshooting investigations attached;
- `PrismAlertNotifier`: a task callback that alerts (with an investigation's findings when it names one);
- `deadline_missed`: a Deadline Alert's callback, run by the triggerer (async), on the same channels.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from html import escape

from airflow.sdk import BaseHook, BaseNotifier, get_current_context
from airflow.sdk.log import redact

from prism.monitoring import troubleshooting
from prism.monitoring.dashboard_records import now_iso, record
from prism.refusals import Refused
from prism.runtime import in_backfill
from prism.settings import connections

log = logging.getLogger(__name__)
FAILED = {"slack": "Slack alert failed: %s", "email": "e-mail alert failed: %s"}


def slack_escape(text: str) -> str:
    """Text for Slack's mrkdwn: &, < and > as Slack asks, so a value shows as itself."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def email_html(text: str) -> str:
    """An alert as an HTML e-mail body: the text escaped, whitespace kept."""
    return f'<pre style="white-space:pre-wrap">{escape(text)}</pre>'


def _connection(conn_id: str):
    try:
        return BaseHook.get_connection(conn_id)
    except Exception:  # noqa: BLE001 - the channel is simply not configured
        return None


async def _aconnection(conn_id: str):
    try:
        return await BaseHook.aget_connection(conn_id)
    except Exception:  # noqa: BLE001 - the channel is simply not configured
        return None


def _compose(subject: str, body: str, severity: str) -> tuple[str, str, str]:
    """Subject, body and the alert's text, every secret masked; the text is logged here."""
    # Every secret Airflow knows leaves here as ***, whatever put it in the text (an error, a finding).
    subject, body = redact(str(subject)), redact(str(body))
    text = f"[PRISM {severity.upper()}] {subject}" + (f"\n{body}" if body else "")
    log.warning("ALERT %s", text)
    return subject, body, text


def _slack_notifier(conn_id: str, text: str) -> BaseNotifier:
    # Imported when an alert goes to Slack: the notifier pulls slack_sdk (~0.4 s), too slow for DAG parsing.
    from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

    # Slack's own escaping: no <link|label>, <!channel> or <@user> can come from a subject or body.
    return SlackWebhookNotifier(
        slack_webhook_conn_id=conn_id, text=slack_escape(text), unfurl_links=False, unfurl_media=False
    )


def _email_notifier(conn, subject: str, text: str, severity: str) -> BaseNotifier:
    # Imported when an alert goes by e-mail: the notifier adds ~20 ms to every parse of a DAG importing this module.
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    return SmtpNotifier(
        smtp_conn_id=conn.conn_id,
        to=conn.extra_dejson.get("to") or [],
        from_email=conn.extra_dejson.get("from_email"),  # given, so the notifier renders no template for it
        subject=" ".join(f"[PRISM {severity}] {subject}".split())[:900],  # one header line
        html_content=email_html(text),
    )


def _channels(subject: str, text: str, severity: str, slack, smtp) -> list[tuple[str, Callable[[], BaseNotifier]]]:
    """(channel, make its notifier) for each channel whose connection exists. A notifier is made inside the
    channel's own try, so one that cannot even be made fails only its channel."""
    channels = []
    if slack is not None:
        channels.append(("slack", lambda: _slack_notifier(slack.conn_id, text)))
    if smtp is not None:
        channels.append(("email", lambda: _email_notifier(smtp, subject, text, severity)))
    return channels


def send_alert(
    subject: str,
    body: str = "",
    severity: str = "error",
    slack_conn_id: str = connections.SLACK,
    smtp_conn_id: str = connections.SMTP,
    investigations: list[str] | None = None,
    ti=None,
) -> list[str]:
    """Send an alert on every configured channel. Returns the channels that took it. `investigations`
    names the troubleshooting investigations whose findings the body carries (for the dashboard)."""
    subject, body, text = _compose(subject, body, severity)
    sent = ["log"]
    slack, smtp = _connection(slack_conn_id), _connection(smtp_conn_id)
    for channel, notifier in _channels(subject, text, severity, slack, smtp):
        try:
            # notify(), not the notifier's __call__: that would render the alert's text as a Jinja template.
            notifier().notify({})
            sent.append(channel)
        except Exception as exc:  # noqa: BLE001 - one channel failing must not hide the alert
            log.error(FAILED[channel], exc)
    record(
        "alert",
        {
            "at": now_iso(),
            "severity": severity,
            "subject": subject,
            "body": body[:6000],
            "investigations": investigations or [],
            "channels": sent,
        },
        ti=ti,
        append=True,
    )
    return sent


async def asend_alert(
    subject: str,
    body: str = "",
    severity: str = "error",
    slack_conn_id: str = connections.SLACK,
    smtp_conn_id: str = connections.SMTP,
) -> list[str]:
    """send_alert() for the triggerer's event loop: the notifiers' async_notify, connections read without
    blocking. Nothing is recorded for the dashboard: there is no task instance to record it on."""
    subject, body, text = _compose(subject, body, severity)
    sent = ["log"]
    slack, smtp = await _aconnection(slack_conn_id), await _aconnection(smtp_conn_id)
    for channel, notifier in _channels(subject, text, severity, slack, smtp):
        try:
            await notifier().async_notify({})  # not awaited as a notifier: no Jinja rendering of the text
            sent.append(channel)
        except Exception as exc:  # noqa: BLE001 - one channel failing must not hide the alert
            log.error(FAILED[channel], exc)
    return sent


def alert(
    subject: str,
    body: str = "",
    severity: str = "error",
    investigations: tuple[str, ...] | list[str] = (),
    at: datetime | None = None,
    ti=None,
) -> dict:
    """send_alert() with the findings of each named troubleshooting investigation attached to its body.
    Returns {"sent": [channels], "findings": [...]}. Inside a backfill the investigations are left out
    (they would describe the present, not the run's window)."""
    findings = []
    if investigations and _in_backfill():
        body += (
            ("\n" if body else "") + f"Not investigated ({', '.join(investigations)}): inside a backfill the findings "
            "would describe the present, not the run's window."
        )
        investigations = ()
    for kind in dict.fromkeys(investigations):
        try:
            findings.append(troubleshooting.investigate(kind, at))
        except Exception as exc:  # noqa: BLE001 - the alert goes out even when the investigation cannot start
            log.warning("investigation %s could not run: %s", kind, exc)
            findings.append(
                {"kind": kind, "text": f"Diagnosis: {kind} could not run: {type(exc).__name__}: {exc}", "steps": []}
            )
    full = "\n\n".join(part for part in [body, *(f["text"] for f in findings)] if part)
    sent = send_alert(subject, full, severity, investigations=[f["kind"] for f in findings], ti=ti)
    return {"sent": sent, "findings": findings}


def _in_backfill() -> bool:
    try:
        return in_backfill(get_current_context())
    except Exception:  # noqa: BLE001 - not inside a running task
        return False


class PrismAlertNotifier(BaseNotifier):
    """Use as on_failure_callback (or any callback): alerts with the DAG, task, run and error, and with
    the findings of `investigation` (a troubleshooting investigation) when one is named."""

    template_fields = ("subject",)

    def __init__(self, subject: str = "", severity: str = "error", investigation: str | None = None):
        super().__init__()
        self.subject = subject
        self.severity = severity
        self.investigation = investigation

    def notify(self, context) -> None:
        ti = context.get("ti") or context.get("task_instance")
        exc = context.get("exception")
        subject = self.subject or f"{getattr(ti, 'dag_id', '?')}.{getattr(ti, 'task_id', '?')} failed"
        body = f"run {context.get('run_id')}" + (f"\n{type(exc).__name__}: {exc}" if exc else "")
        # A refusal is bad input, not a service fault: nothing to investigate, and no API call to make.
        investigations = [self.investigation] if self.investigation and not isinstance(exc, Refused) else []
        if investigations:
            alert(subject, body, self.severity, investigations, ti=ti)
        else:
            send_alert(subject, body, self.severity, ti=ti)


async def deadline_missed(context: dict | None = None, severity: str = "error") -> list[str]:
    """A Deadline Alert's callback (`AsyncCallback(deadline_missed)`, run by the triggerer): the DAG run
    has not succeeded by its deadline. Alerts on the log, Slack and e-mail; returns the channels."""
    run = (context or {}).get("dag_run") or {}
    deadline = (context or {}).get("deadline") or {}
    subject = f"{run.get('dag_id', '?')} run {run.get('dag_run_id', '?')} missed its deadline"
    body = (
        f"deadline {deadline.get('deadline_time', '?')}; the run was queued at {run.get('queued_at') or '?'}, "
        f"started at {run.get('start_date') or 'not yet'}, and is {run.get('state', '?')}"
    )
    return await asend_alert(subject, body, severity)
