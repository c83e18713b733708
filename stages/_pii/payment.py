"""Payment card numbers and IBANs, accepted only when their check digits are right.

Cards: 13 to 19 digits (12 for Maestro's prefixes), written together or in groups
(`4111 1111 1111 1111`, `3782-822463-10005`: one kind of separator, in the layouts cards are
printed in), that pass
the Luhn check (python-stdnum) and start like a card network's numbers (Visa 4, Mastercard
51-55 and 2221-2720, Amex 34/37, Discover and UnionPay 6, JCB 35 and the old 1800/2131,
Diners 30/36/38/39, Maestro 50/56-58, Mir 2200-2204). An order number that fails Luhn is
not a card; one in ten random numbers passes Luhn, and the prefix and grouping rules keep
most of those out.

IBANs: country code, two check digits and the account part, together or in groups of four
(`DE89 3704 0044 0532 0130 00`), accepted when python-stdnum's `iban.is_valid` says the
country's length and the mod-97 check are right.
"""

from __future__ import annotations

import re

from stdnum import iban, luhn

_CARD = re.compile(r"[0-9](?:[ -]?[0-9]){11,18}")
# How cards are printed when their digits are grouped (digits per group).
CARD_LAYOUTS = frozenset({(4, 4, 4, 4), (4, 4, 4, 4, 3), (4, 6, 5), (4, 6, 4), (4, 4, 4, 3),
                          (4, 4, 4, 2), (4, 4, 4, 1), (4, 4, 5), (4, 4, 4)})
# Maestro's prefixes: the only cards with 12 digits, a length many other numbers have too.
# 0604 and 6390 are Maestro ranges that older IIN tables list (and Faker writes).
MAESTRO_PREFIXES = ("5018", "5020", "5038", "5893", "6304", "6759", "6761", "6762", "6763",
                    "56", "57", "58", "0604", "6390")
_IBAN = re.compile(r"[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{1,4}){3,8}")


def find_cards(text: str, pos: int = 0, endpos: int | None = None) -> list[tuple[int, int]]:
    """Spans found in text[pos:endpos] (the text around it still decides where a number
    ends)."""
    spans = []
    for match in _CARD.finditer(text, pos, len(text) if endpos is None else endpos):
        start = match.start()
        if start and (text[start - 1].isalnum() or text[start - 1] in "-.,_"):
            continue
        span = _longest_card(text, start, match.group())
        if span is not None:
            spans.append(span)
    return spans


def _longest_card(text: str, start: int, candidate: str) -> tuple[int, int] | None:
    """The longest run of whole groups from the start of `candidate` that is a card
    number and ends where the number ends (the greedy match may have run into the next
    number: `4111 1111 1111 1111 42`)."""
    groups = re.split(r"[ -]", candidate)
    separators = set(re.findall(r"[ -]", candidate))
    for count in range(len(groups), 0, -1):
        length = sum(map(len, groups[:count])) + count - 1
        end = start + length
        if end < len(text) and (text[end].isalnum() or text[end] == "_" or
                                (text[end] in "-.," and text[end + 1:end + 2].isdigit())):
            continue
        digits = "".join(groups[:count])
        if _is_card(digits, groups[:count], len(separators)):
            return start, end
    return None


def _is_card(digits: str, groups: list[str], kinds_of_separator: int) -> bool:
    if not 12 <= len(digits) <= 19 or kinds_of_separator > 1:
        return False
    if len(groups) > 1 and tuple(map(len, groups)) not in CARD_LAYOUTS:
        return False
    prefix = digits.startswith(MAESTRO_PREFIXES) if len(digits) == 12 else _card_prefix(digits)
    return prefix and luhn.is_valid(digits)


def _card_prefix(digits: str) -> bool:
    first, four = digits[0], int(digits[:4])
    return (first in "3456" or 2221 <= four <= 2720 or 2200 <= four <= 2204
            or four in (1800, 2131))


def find_ibans(text: str) -> list[tuple[int, int]]:
    spans = []
    for match in _IBAN.finditer(text):
        start = match.start()
        if start and (text[start - 1].isalnum() or text[start - 1] == "_"):
            continue
        candidate = match.group()
        # candidate ends: before each space inside the match, and the match's end
        ends = [i for i, ch in enumerate(candidate) if ch == " "] + [len(candidate)]
        for end in reversed(ends):
            after = start + end
            if after < len(text) and (text[after].isalnum() or text[after] == "_"):
                continue
            if iban.is_valid(candidate[:end]):
                spans.append((start, after))
                break
    return spans
