"""Which countries' numbering plans to read a phone number written without a country code
in, by the document's language (`lang`, as `langid` writes it).

A number with `+` or `00` needs no hint. A national number (`030 1234567`) means something
only in its country's plan; each hint is one more plan a random run of digits may happen to
fit, so the lists hold the countries where most pages in that language come from, not every
country that speaks it.
"""

from __future__ import annotations

BY_LANGUAGE: dict[str, tuple[str, ...]] = {
    "en": ("US", "GB", "CA", "AU", "IN"),
    "de": ("DE", "AT", "CH"),
    "fr": ("FR", "BE", "CH", "CA", "GP", "RE"),  # with two overseas departments' plans
    "es": ("ES", "MX", "AR", "CO"),
    "it": ("IT", "CH"),
    "pt": ("BR", "PT"),
    "nl": ("NL", "BE"),
    "pl": ("PL",),
    "cs": ("CZ",),
    "sk": ("SK",),
    "hu": ("HU",),
    "ro": ("RO",),
    "sv": ("SE",),
    "da": ("DK",),
    "no": ("NO",),
    "fi": ("FI",),
    "ru": ("RU",),
    "uk": ("UA",),
    "tr": ("TR",),
    "el": ("GR",),
    "ja": ("JP",),
    "zh": ("CN", "TW", "HK"),
    "ko": ("KR",),
    "vi": ("VN",),
    "th": ("TH",),
    "id": ("ID",),
    "ar": ("SA", "EG", "AE"),
    "he": ("IL",),
    "fa": ("IR",),
    "hi": ("IN",),
}
# Countries where a national number is written with its trunk prefix 0, mobiles included
# (`030 1234567`, `06 12 34 56 78`, `090-1234-5678`): there a number without it is taken
# only after a phone word. (Not in Brazil, China or India, where mobiles go without it.)
WRITES_TRUNK_ZERO = frozenset({"DE", "AT", "CH", "FR", "BE", "NL", "GB", "IE", "AU", "NZ", "JP",
                               "FI", "SE", "TR", "GP", "RE"})
# Pages with no `lang` (the stage runs before `langid`) or a language not listed above.
FALLBACK: tuple[str, ...] = ("US", "GB")


def regions_for(lang: str | None) -> tuple[str, ...]:
    return BY_LANGUAGE.get(lang or "", FALLBACK)
