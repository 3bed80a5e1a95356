"""Who published an item: the feed's configured publisher, else the registrable domain of its URL.

Pure. The public-suffix list comes from ``publicsuffixlist``, which ships it as package data
and is never told to fetch it, so nothing is downloaded at run time.
"""

from __future__ import annotations

import ipaddress
from functools import cache
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from publicsuffixlist import PublicSuffixList


@cache
def _suffixes() -> PublicSuffixList:
    # Loaded on first use (about 50 ms): ``crisis-monitor --help`` never pays for it.
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()


def publisher_of(url: str, configured: str | None = None) -> str:
    """The publisher of an item at ``url``: ``configured`` (the feed's ``publisher`` key) if
    set, else the registrable domain of the URL (``news.bbc.co.uk`` -> ``bbc.co.uk``).

    A host that has no registrable domain (an IP address, ``localhost``) is its own publisher;
    a URL without a host gives ``""``.
    """
    if configured and configured.strip():
        return configured.strip()
    try:
        host = (urlsplit(url.strip()).hostname or "").rstrip(".")
    except ValueError:
        return ""
    if not host:
        return ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return host
    return _suffixes().privatesuffix(host) or host
