"""URLs and hosts in one normal form, so that a list entry and a document's URL that name the
same page compare equal.

A host is lower-cased, loses its trailing dot (`example.com.` is the fully qualified form of
`example.com`) and, when it is an internationalised name, becomes its punycode (`bücher.de`
-> `xn--bcher-kva.de`, UTS #46 mapping, so full-width dots and upper case map too). A URL's
key is `host[:port]/path[?query]`: scheme, user-info and fragment dropped (a page listed as
`http://` is the same page over `https://`; lists such as UT1's `urls` carry no scheme),
default ports (80, 443) dropped, `%xx` escapes in upper case, a trailing `/` removed
(`example.com/a/` = `example.com/a`, `example.com/` = `example.com`).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import idna

DEFAULT_PORTS = {"80", "443"}
MAX_HOST = 253  # DNS's limit on a name's length
_PERCENT_ESCAPE = re.compile(r"%[0-9a-fA-F]{2}")


@dataclass(frozen=True)
class ParsedUrl:
    host: str  # normalised host (punycode, lower case)
    key: str   # what exact-URL list entries are compared with


def normalise_host(host: str) -> str | None:
    """The host in normal form, or None when nothing is left of it."""
    host = host.strip().lower().rstrip(".")
    if not host:
        return None
    if host.isascii() or len(host) > MAX_HOST:  # too long for DNS: compared as written
        return host
    return punycode(host)


@functools.lru_cache(maxsize=4096)
def punycode(host: str) -> str:
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError):
        # Not a valid IDN (a label too long, a disallowed character): compared as written.
        return host


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def parse_url(raw: str) -> ParsedUrl | None:
    """Host and key of a URL (or of a list entry such as `example.com/page`, read as http);
    None for a string with no host or one `urlsplit` refuses (`http://[::1`)."""
    raw = raw.strip()
    if "://" not in raw:
        raw = "http://" + raw.lstrip("/")
    try:
        parts = urlsplit(raw)
    except ValueError:
        return None
    host, port = split_netloc(parts.netloc)
    host = normalise_host(host)
    if host is None:
        return None
    path = parts.path
    if "%" in path:
        path = _PERCENT_ESCAPE.sub(lambda m: m.group(0).upper(), path)
    where = f"[{host}]" if ":" in host else host
    if port and port not in DEFAULT_PORTS:
        where += f":{port}"
    key = where + path.rstrip("/") + (f"?{parts.query}" if parts.query else "")
    return ParsedUrl(host, key)


def split_netloc(netloc: str) -> tuple[str, str]:
    """(host, port) of `user:pass@host:port`, `[v6]:port`; port "" when absent or not a
    number. By hand rather than `SplitResult.port`, which raises on a malformed port."""
    hostport = netloc.rpartition("@")[2]
    if hostport.startswith("["):
        host, _, rest = hostport[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = hostport.partition(":")
    port = port.lstrip("0") or ("0" if port else "")
    return host, port if port.isdigit() else ""
