"""Public IP addresses, v4 and v6.

An address counts only where the standard library's `ipaddress` calls it global: private
(10/8, 192.168/16, fc00::/7 ...), loopback, link-local, documentation (192.0.2/24,
2001:db8::/32 ...), multicast and reserved addresses are nobody's.

IPv4 is four dotted decimals that are not part of a longer dotted number (`1.2.3.4.5`, a
version), not led by a letter (`v1.2.3.4`) and not after a word that names a version or a
section (`version 2.1.3.4`, `§ 1.2.3.4`). Leading zeros make no address (`ipaddress`
refuses them, as it refuses octets above 255).

IPv6 is found from each `:<hex>:` outwards (the cost follows the colons, not the length of
the text), then validated by `ipaddress`; times (`12:30:45`) and MAC addresses have too few
or too many groups to be one, and a candidate needs three groups or a full first group
(`2001::1`), as C++'s `a::b` has neither.
"""

from __future__ import annotations

import ipaddress
import re

_IPV4 = re.compile(r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}")
# Words after which a dotted quad is a number of something else.
_NOT_AN_ADDRESS_AFTER = re.compile(
    r"(?<!\w)(?:version|ver\.?|v\.|release|build|firmware|kernel|update|section|sect?\.|§|"
    r"chapter|article|art\.|clause|rule|step|figure|fig\.|table|appendix|no\.|nr\.|#)"
    r"\s*\Z", re.IGNORECASE)
_V6_ANCHOR = re.compile(r":[0-9A-Fa-f]{0,4}:")
_V6_CHARS = frozenset("0123456789abcdefABCDEF:")
_V6_TAIL_CHARS = _V6_CHARS | frozenset(".")  # an IPv4 tail: ::ffff:192.0.2.1
MAX_V6 = 45


def find_ipv4(text: str, pos: int = 0, endpos: int | None = None) -> list[tuple[int, int]]:
    """Spans found in text[pos:endpos] (the text around it still decides where a number
    ends)."""
    spans = []
    for match in _IPV4.finditer(text, pos, len(text) if endpos is None else endpos):
        start, end = match.span()
        if start and (text[start - 1].isalnum() or text[start - 1] in "._"):
            continue
        if end < len(text) and (text[end].isalnum() or text[end] == "_" or
                                (text[end] == "." and text[end + 1:end + 2].isdigit())):
            continue
        if _is_global(match.group()) and \
                not _NOT_AN_ADDRESS_AFTER.search(text, max(0, start - 12), start):
            spans.append((start, end))
    return spans


def find_ipv6(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    done = 0
    for anchor in _V6_ANCHOR.finditer(text):
        if anchor.start() < done:
            continue
        start = anchor.start()
        while start > 0 and anchor.start() - start < MAX_V6 and text[start - 1] in _V6_CHARS:
            start -= 1
        end = anchor.end()
        while end < len(text) and end - start < MAX_V6 and text[end] in _V6_TAIL_CHARS:
            end += 1
        done = end
        while end > start and text[end - 1] == ".":
            end -= 1  # a full stop after the address
        if (start and (text[start - 1].isalnum() or text[start - 1] in "_:.")) or \
                (end < len(text) and (text[end].isalnum() or text[end] in "_:")):
            continue  # part of a longer token
        if _looks_like_v6(text[start:end]) and _is_global(text[start:end]):
            spans.append((start, end))
    return spans


def _looks_like_v6(candidate: str) -> bool:
    """Three groups or more, or a full first group: `a::b` and `std::b` are code."""
    groups = [g for g in candidate.split(":") if g]
    return len(groups) >= 3 or (len(groups) == 2 and len(groups[0]) == 4)


def _is_global(candidate: str) -> bool:
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        return False
    # is_global leaves IPv4 multicast (224.0.0.0/4) in: a group, not a host
    return address.is_global and not address.is_multicast
