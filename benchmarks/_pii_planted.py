"""The planted PII set of filters_bench.py's `pii` figures, and how findings are scored.

Pages: real pages (their main text), each page once clean and once with PII planted. Planted
values come from Faker in ten locales (fixed seeds), `PER_PAGE` per page, each kind in turn
(e-mail, phone, IP, card, IBAN, and a US SSN on en_US pages), put between two lines of the
page inside a short sentence; half the phone sentences name the number as one (`Tel.`,
`call`), half do not. The page's `lang` is the locale's language, as `langid` would give for
a page written there (phone numbers without a country code are read in that language's
regions). IPs are public ones (Faker's `ipv4_public`, and `ipv6` values that are global and
not multicast: Faker also writes private ones, which are nobody's).

Scoring: a planted value is found when one finding of its kind covers it (a phone number up
to its extension, `x123`). A finding on a clean page is real when `pii_clean_audit.tsv`
lists it as real personal data: the clean pages are real pages, and some carry real contact
data (a press office's phone, an MP's address), which is no false redaction. The audit holds
a hash of each finding's text, never the text; any finding it does not list counts as false
and is printed, so a change that finds something new on a clean page shows up.
"""

from __future__ import annotations

import csv
import hashlib
import ipaddress
import random
from dataclasses import dataclass, field
from pathlib import Path

from faker import Faker

LOCALES = {"en_US": "en", "en_GB": "en", "de_DE": "de", "fr_FR": "fr", "es_ES": "es",
           "it_IT": "it", "nl_NL": "nl", "pl_PL": "pl", "pt_BR": "pt", "ja_JP": "ja"}
PER_PAGE = 3
AUDIT = Path(__file__).resolve().parent / "pii_clean_audit.tsv"
SENTENCES = {
    "email": ["Contact: {}", "Questions? Write to {} any time.", "{}", "E-Mail: {}"],
    "phone_named": ["Tel. {}", "Call us on {} (Mon-Fri).", "Telefon: {}", "Phone {}"],
    "phone_bare": ["{}", "Our office: {}", "Reservations {} or online.", "({})"],
    "ip": ["The server at {} stopped answering.", "Blocked: {}", "{}"],
    "card": ["Card number {}", "Paid with {} on Monday.", "{}"],
    "iban": ["IBAN {}", "Please transfer to {} by Friday.", "{}"],
    "ssn": ["SSN {}", "Social security number: {}", "{}"],
}


@dataclass
class PlantedPage:
    id: str
    lang: str
    text: str
    # (kind, start, end, sentence template) of each planted value
    planted: list[tuple[str, int, int, str]] = field(default_factory=list)


def plant(pages: list[tuple[str, str]], seed: int = 19) -> list[PlantedPage]:
    """Each (id, text) page with PER_PAGE values planted between its lines."""
    rng = random.Random(seed)
    fakers = {}
    for number, locale in enumerate(LOCALES):
        fakers[locale] = Faker(locale)
        fakers[locale].seed_instance(seed + number)
    kinds = ["email", "phone", "ip", "card", "iban"]
    turn = 0
    planted = []
    for number, (page_id, text) in enumerate(pages):
        locale = list(LOCALES)[number % len(LOCALES)]
        fake = fakers[locale]
        lines = text.split("\n")
        slots = sorted(rng.sample(range(len(lines) + 1), min(PER_PAGE, len(lines) + 1)))
        values = []
        for _ in slots:
            kind = kinds[turn % len(kinds)]
            turn += 1
            if locale == "en_US" and rng.random() < 0.25:
                kind = "ssn"
            values.append(_value(fake, kind, rng))
        page = PlantedPage(f"{page_id}#planted", LOCALES[locale], "")
        pieces, at = [], 0
        for slot, (kind, template, value) in zip(slots, values):
            pieces.append("\n".join(lines[at:slot]) + ("\n" if slot else ""))
            at = slot
            before = sum(len(p) for p in pieces) + template.index("{}")
            page.planted.append((kind, before, before + len(value), template))
            pieces.append(template.format(value) + "\n")
        pieces.append("\n".join(lines[at:]))
        page.text = "".join(pieces)
        planted.append(page)
    return planted


def _value(fake: Faker, kind: str, rng: random.Random) -> tuple[str, str, str]:
    """(kind, sentence template, value)."""
    if kind == "email":
        value = rng.choice([fake.email, fake.free_email, fake.company_email])()
    elif kind == "phone":
        family = rng.choice(["phone_named", "phone_bare"])
        return "phone", rng.choice(SENTENCES[family]), fake.phone_number()
    elif kind == "ip":
        value = fake.ipv4_public() if rng.random() < 0.6 else _public_v6(fake)
    elif kind == "card":
        value = fake.credit_card_number()
    elif kind == "iban":
        value = fake.iban()
    else:
        value = fake.ssn()
    return kind, rng.choice(SENTENCES[kind]), value


def _public_v6(fake: Faker) -> str:
    while True:
        value = fake.ipv6()
        address = ipaddress.ip_address(value)
        if address.is_global and not address.is_multicast:
            return value


def phone_family(template: str) -> str:
    return "named" if template in SENTENCES["phone_named"] else "bare"


def covered(kind: str, start: int, end: int, text: str, findings) -> bool:
    if kind == "phone":
        end = start + len(text[start:end].split("x")[0].rstrip())
    return any(f.kind == kind and f.start <= start and f.end >= end for f in findings)


def digest(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def read_audit(path: Path = AUDIT) -> dict[tuple[str, str, str], tuple[str, str]]:
    """{(page id, kind, hash of the finding's text): (verdict, note)}."""
    if not path.exists():
        return {}
    with path.open(encoding="utf-8") as rows:
        return {(r["page"], r["kind"], r["sha1_16"]): (r["verdict"], r["note"])
                for r in csv.DictReader((line for line in rows if not line.startswith("#")),
                                        delimiter="\t")}
