"""The email channel: SMTP with STARTTLS, implicit TLS or plain, optional auth; multipart text
and HTML. One message per alert, or with ``digest`` one message per period listing them.

The Message-ID comes from the alert id, so a retried delivery is the same message (a mail
system that saw it already can drop the copy), and an update names its story's first alert
(``Alert.thread``) in In-Reply-To and References: mail readers show it in that alert's thread.
"""

from __future__ import annotations

import email.policy
import hashlib
import re
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate

import aiosmtplib

from monitor.config import ChannelSpec, reveal
from monitor.errors import ConfigError
from monitor.notify.base import SendFailure
from monitor.notify.payload import email_bodies, subject
from monitor.types import Alert

# The default policy folds a long Subject right after "Subject:", which readers then show with
# a leading space; with room for a whole subject on one line (RFC 5322 allows up to 998) it
# folds only where it must, between encoded words.
POLICY = email.policy.SMTP.clone(max_line_length=200)


_ID_UNSAFE = re.compile(r"[^A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]")


def message_id(alert_id: str, sender: str) -> str:
    """``<crisis-monitor.ALERT-ID@sender's domain>``: stable for an alert, so its retries and the
    updates that thread under it agree on it."""
    domain = _ID_UNSAFE.sub("", sender.rpartition("@")[2]) or "crisis-monitor.invalid"
    return f"<crisis-monitor.{_ID_UNSAFE.sub('-', alert_id)}@{domain}>"


def digest_id(alerts: Sequence[Alert]) -> str:
    """The alert id a message of several alerts is known by: a hash of theirs, the same on a retry."""
    return "digest." + hashlib.sha256("\n".join(sorted(a.id for a in alerts)).encode()).hexdigest()[:32]


def message(alerts: Sequence[Alert], sender: str, to: Sequence[str]) -> EmailMessage:
    text, html = email_bodies(alerts)
    mail = EmailMessage(policy=POLICY)
    mail["Subject"] = subject(alerts)
    mail["From"] = sender
    mail["To"] = ", ".join(to)
    mail["Date"] = formatdate(localtime=False)
    first = alerts[0]
    mail["Message-ID"] = message_id(first.id if len(alerts) == 1 else digest_id(alerts), sender)
    if len(alerts) == 1 and first.kind == "update" and first.thread:
        parent = message_id(first.thread, sender)
        mail["In-Reply-To"] = parent
        mail["References"] = parent
    mail["X-Crisis-Monitor-Alerts"] = ", ".join(a.id for a in alerts)
    mail.set_content(text)
    mail.add_alternative(html, subtype="html")
    return mail


class EmailNotifier:
    def __init__(self, channel: ChannelSpec, tls_context: ssl.SSLContext | None = None) -> None:
        options = channel.options
        self.options = options
        self.digest: float | None = options.get("digest")
        ca_file = options.get("ca_file")
        if tls_context is None and ca_file is not None:
            # A relay whose certificate a private CA signed: trust that CA (and the system's).
            try:
                tls_context = ssl.create_default_context()
                tls_context.load_verify_locations(cafile=str(ca_file))
            except (OSError, ssl.SSLError) as error:
                reason = getattr(error, "strerror", None) or getattr(error, "reason", None) or str(error)
                raise ConfigError(f"channel {channel.name!r}: ca_file {ca_file}: cannot load it: {reason}",
                                  "give a PEM file of the CA certificates that signed the SMTP server's "
                                  "certificate") from None
        self.tls_context = tls_context

    async def send(self, alert: Alert) -> SendFailure | None:
        return await self.send_group([alert])

    async def send_group(self, alerts: Sequence[Alert]) -> SendFailure | None:
        o = self.options
        mail = message(alerts, o["from"], o["to"])
        username, password = o.get("username"), o.get("password")
        try:
            # As bytes, flattened with our policy (aiosmtplib would flatten with its own).
            await aiosmtplib.send(mail.as_bytes(), sender=o["from"], recipients=list(o["to"]),
                                  hostname=o["host"], port=o["port"], use_tls=o["tls"], start_tls=o["starttls"],
                                  username=reveal(username) if username else None,
                                  password=reveal(password) if password else None,
                                  timeout=o["timeout"], tls_context=self.tls_context)
        except aiosmtplib.SMTPResponseException as error:
            # 4xx replies are temporary by definition; 5xx are permanent (bad recipient, refused).
            return SendFailure(f"SMTP {error.code}: {error.message}", retryable=400 <= error.code < 500,
                               status_code=error.code)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            return SendFailure(f"SMTP: {error}", retryable=True)
        return None

    async def close(self) -> None:
        return None
