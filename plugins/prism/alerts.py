"""Alerts: the guide's `send-alert`, as an Airflow notifier.

Every alert is logged. It also goes to Slack (an incoming-webhook connection `prism_slack`, type
`slackwebhook`) and to e-mail (an SMTP connection `prism_smtp` with extra `{"to": [...]}`) when
those connections exist. A channel that fails is logged; it never hides the others. An alert sent
from a running task is also recorded for the dashboard (dashboard_records). A failure alert can run
one of the guide's troubleshooting investigations and carry its findings (troubleshooting).
"""

from __future__ import annotations

import logging

from airflow.sdk import BaseHook, BaseNotifier

log = logging.getLogger(__name__)
SLACK_CONN = "prism_slack"
SMTP_CONN = "prism_smtp"


def slack_escape(text: str) -> str:
    """Text for Slack's mrkdwn: &, < and > as Slack asks, so a value shows as itself."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def email_html(text: str) -> str:
    """An alert as an HTML e-mail body: the text escaped, whitespace kept."""
    from html import escape

    return f'<pre style="white-space:pre-wrap">{escape(text)}</pre>'


def _connection(conn_id: str):
    try:
        return BaseHook.get_connection(conn_id)
    except Exception:  # noqa: BLE001 - the channel is simply not configured
        return None


def send_alert(
    subject: str,
    body: str = "",
    severity: str = "error",
    slack_conn_id: str = SLACK_CONN,
    smtp_conn_id: str = SMTP_CONN,
    investigations: list[str] | None = None,
    ti=None,
) -> list[str]:
    """Send an alert on every configured channel. Returns the channels that took it. `investigations`
    names the troubleshooting investigations whose findings the body carries (for the dashboard)."""
    from airflow.sdk.log import redact

    # Every secret Airflow knows leaves here as ***, whatever put it in the text (an error, a finding).
    subject, body = redact(str(subject)), redact(str(body))
    text = f"[PRISM {severity.upper()}] {subject}" + (f"\n{body}" if body else "")
    log.warning("ALERT %s", text)
    sent = ["log"]
    if _connection(slack_conn_id) is not None:
        try:
            from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook

            # Slack's own escaping: no <link|label>, <!channel> or <@user> can come from a subject or body.
            SlackWebhookHook(slack_webhook_conn_id=slack_conn_id).send(
                text=slack_escape(text), unfurl_links=False, unfurl_media=False
            )
            sent.append("slack")
        except Exception as exc:  # noqa: BLE001 - one channel failing must not hide the alert
            log.error("Slack alert failed: %s", exc)
    smtp = _connection(smtp_conn_id)
    if smtp is not None:
        try:
            from airflow.providers.smtp.hooks.smtp import SmtpHook

            to = smtp.extra_dejson.get("to") or []
            with SmtpHook(smtp_conn_id=smtp_conn_id) as hook:
                hook.send_email_smtp(
                    to=to,
                    subject=" ".join(f"[PRISM {severity}] {subject}".split())[:900],
                    html_content=email_html(text),
                )
            sent.append("email")
        except Exception as exc:  # noqa: BLE001
            log.error("e-mail alert failed: %s", exc)
    from prism.monitoring.dashboard_records import now_iso, record

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
        from prism.refusals import Refused

        # A refusal is bad input, not a service fault: nothing to investigate, and no API call to make.
        if self.investigation and not isinstance(exc, Refused):
            from prism.monitoring.troubleshooting import alert

            alert(subject, body, self.severity, [self.investigation], ti=ti)
        else:
            send_alert(subject, body, self.severity, ti=ti)


def alert(
    subject: str,
    body: str = "",
    severity: str = "error",
    investigations: tuple[str, ...] | list[str] = (),
    at=None,
    ti=None,
) -> dict:
    """An alert with the findings of each named troubleshooting investigation attached. Returns
    {"sent": [channels], "findings": [...]}."""
    from prism.monitoring import troubleshooting

    return troubleshooting.alert(subject, body, severity, investigations, at=at, ti=ti)
