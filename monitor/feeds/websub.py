"""WebSub (W3C Recommendation, 2018) as a subscriber: the decisions, apart from the I/O. Pure.

- ``subscribe_form``: what we POST to a hub (``hub.mode=subscribe``, our callback, the topic,
  a secret of our own per subscription, the lease we ask for);
- ``verification``: the answer to a hub's GET on our callback (echo ``hub.challenge`` only for
  the topic and mode we asked for; read the lease it grants);
- ``signature_valid``: ``X-Hub-Signature: method=HMAC(secret, body)`` with the methods the
  spec names (sha1, sha256, sha384, sha512), compared in constant time;
- ``renewal_due``: when to subscribe again, early enough that polling at ``max_interval`` (the
  safety net, and the moment we look) still comes before the lease runs out.

Subscriptions' states: ``requested`` (we asked, the hub has not verified), ``active`` (verified,
until ``expires_at``), ``denied`` (the hub said no, with its reason).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

ALGORITHMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512}
LEASE_SECONDS = 10 * 86400  # what we ask for; the hub decides
RETRY_AFTER = 3600.0  # a request the hub never verified, or a refusal, is tried again after this long
MAX_LEASE = 365 * 86400  # a hub granting more is read as granting this (it must renew some time)


@dataclass(frozen=True)
class Subscription:
    """A feed's subscription as stored."""

    feed_id: int
    hub: str
    topic: str
    token: str  # the last part of our callback URL: which subscription a hub's request is for
    secret: str
    state: str = "requested"
    lease_seconds: int | None = None
    requested_at: datetime | None = None
    expires_at: datetime | None = None
    last_error: str | None = None


@dataclass(frozen=True)
class Verification:
    """Our answer to a hub's verification request, and what it changes (None: nothing)."""

    status: int
    body: str
    state: str | None = None
    lease_seconds: int | None = None
    expires_at: datetime | None = None
    error: str | None = None


def callback_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/websub/{token}"


def subscribe_form(subscription: Subscription, public_url: str) -> dict[str, str]:
    return {"hub.mode": "subscribe", "hub.callback": callback_url(public_url, subscription.token),
            "hub.topic": subscription.topic, "hub.secret": subscription.secret,
            "hub.lease_seconds": str(LEASE_SECONDS)}


def verification(params: Mapping[str, str], subscription: Subscription | None, now: datetime) -> Verification:
    """What to answer a GET on our callback: the challenge for a subscription we asked for."""
    mode = params.get("hub.mode", "")
    if subscription is None:
        return Verification(404, "no such subscription")
    if params.get("hub.topic", "") != subscription.topic:
        return Verification(404, "not the topic of this subscription")
    if mode == "denied":  # the hub refuses; it may say why
        reason = params.get("hub.reason") or "no reason given"
        return Verification(200, "", state="denied", error=f"the hub denied it: {reason}")
    if mode != "subscribe" or "hub.challenge" not in params:
        return Verification(404, f"not a subscription we asked for (hub.mode {mode!r})")
    try:
        lease = min(int(params.get("hub.lease_seconds", "")), MAX_LEASE)
    except ValueError:
        return Verification(400, "hub.lease_seconds is missing or not a whole number")
    if lease <= 0:
        return Verification(400, "hub.lease_seconds must be positive")
    return Verification(200, params["hub.challenge"], state="active", lease_seconds=lease,
                        expires_at=now + timedelta(seconds=lease))


def signature_valid(header: str | None, body: bytes, secret: str) -> bool:
    """Whether ``X-Hub-Signature`` is the HMAC of ``body`` with ``secret`` (a method the spec names)."""
    if not header or "=" not in header:
        return False
    method, _, given = header.strip().partition("=")
    digest = ALGORITHMS.get(method.strip().lower())
    if digest is None:
        return False
    expected = hmac.new(secret.encode(), body, digest).hexdigest()
    return hmac.compare_digest(expected, given.strip().lower())


def renewal_due(subscription: Subscription, now: datetime, max_interval: float) -> bool:
    """Whether to (re)subscribe now, at a poll of the feed.

    An active lease is renewed once less than a tenth of it, or less than two and a half poll
    intervals at ``max_interval`` (the next polls may come that late), is left; a request the
    hub never verified, or a refusal, is tried again after ``RETRY_AFTER``.
    """
    if subscription.state == "active" and subscription.expires_at is not None:
        lease = subscription.lease_seconds or LEASE_SECONDS
        margin = min(max(lease * 0.1, 2.5 * max_interval), lease * 0.5)
        return subscription.expires_at - now <= timedelta(seconds=margin)
    if subscription.requested_at is None:
        return True
    return now - subscription.requested_at >= timedelta(seconds=RETRY_AFTER)


def pushing(subscription: Subscription | None, now: datetime) -> bool:
    """Whether the hub pushes this feed now (polling then only checks, at ``max_interval``)."""
    return (subscription is not None and subscription.state == "active"
            and subscription.expires_at is not None and subscription.expires_at > now)
