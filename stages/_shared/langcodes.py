"""Language labels of fastText LID models -> one code per language.

The rule: ISO 639-1 where the language has one, else ISO 639-3 (or the model's own code when
it has neither). Applied to every label a model emits and to every code a user writes in a
spec, so `keep: [eng_Latn]`, `keep: [eng]` and `keep: [en]` all mean `en`.

- `__label__en` (lid.176, OpenLID-style two letters): kept as is, except `nb` -> `no`
  (lid.176 calls Bokmål `no`; `nn` stays Nynorsk).
- `__label__eng_Latn` (GlotLID / NLLB: ISO 639-3 + script): the script is dropped and the
  639-3 code mapped to 639-1 (`eng` -> `en`, `rus` -> `ru`) with the `langcodes` package's
  ISO 639 data, then through the same aliases as a two-letter code (`nob` -> `nb` -> `no`).
  Scripts are not kept apart: `srp_Cyrl` and `srp_Latn` are both `sr`.
- Standard varieties that GlotLID labels as individual languages map to their macrolanguage's
  639-1 code, because that is what a 639-1 model says for the same text: `arb` -> `ar`,
  `cmn` -> `zh`, `zsm` -> `ms`, `pes` -> `fa`, `swh` -> `sw`, `fil` -> `tl`, ...
  (`_STANDARD_VARIETY`). Other varieties stay apart, as lid.176 keeps them apart (`arz`,
  `yue`, `wuu`, `azb`). This is the project's rule, not langcodes' macrolanguage folding,
  which would merge varieties lid.176 tells apart (`mhr`, `pnb`, `diq`, `bxr`, `bcl`).
- lid.176 uses Wikipedia codes; the one that clashes with ISO is `als` (Alemannic), mapped to
  `gsw`. With a script suffix `als_Latn` is ISO's Tosk Albanian, mapped to `sq`.
- `sh` (Serbo-Croatian, lid.176) and `hbs` stay `sh`; `bs`, `hr`, `sr` stay separate.
"""

from __future__ import annotations

from functools import lru_cache
from itertools import product
from string import ascii_lowercase

from langcodes import Language

LABEL_PREFIX = "__label__"

# Individual languages that are the standard variety a macrolanguage's 639-1 code denotes.
_STANDARD_VARIETY = dict(pair.split(":") for pair in """
arb:ar cmn:zh zsm:ms pes:fa swh:sw ekk:et lvs:lv npi:ne khk:mn uzn:uz azj:az plt:mg ydd:yi
gaz:om kmr:ku pbt:ps ory:or gug:gn ayr:ay quy:qu quz:qu ike:iu kpv:kv fuv:ff als:sq fil:tl
""".split())

# Two-letter codes that name the same language as another one we report.
_ISO1_ALIASES = {"nb": "no", "in": "id", "iw": "he", "ji": "yi", "mo": "ro", "tw": "ak"}

# Wikipedia-style codes (lid.176) that are not the ISO code of their language.
_WIKIPEDIA_CODES = {"als": "gsw"}


@lru_cache(maxsize=1)
def _iso3_to_iso1() -> dict[str, str]:
    """ISO 639-2/T, 639-2/B and 639-3 codes -> ISO 639-1, for every two-letter code langcodes
    knows. A deprecated two-letter code sharing its three-letter code with the current one
    (`iw` and `he`: `heb`) gives way to it."""
    table: dict[str, str] = {}
    for two in map("".join, product(ascii_lowercase, repeat=2)):
        language = Language.get(two, normalize=False)
        for variant in ("T", "B"):
            try:
                three = language.to_alpha3(variant)
            except LookupError:  # not an ISO 639-1 code
                break
            if three not in table or Language.get(two).language == two:
                table[three] = two
    return table


@lru_cache(maxsize=4096)
def normalize_code(label: str) -> str:
    """`__label__eng_Latn`, `eng`, `en`, `EN`, `pt-BR` -> the code this project reports."""
    code = label[len(LABEL_PREFIX):] if label.startswith(LABEL_PREFIX) else label
    code = code.strip().replace("-", "_")
    base, _, script = code.partition("_")
    base = base.lower()
    if script and base in _STANDARD_VARIETY:
        return _STANDARD_VARIETY[base]
    if not script:
        base = _WIKIPEDIA_CODES.get(base, base)
    if len(base) == 2:
        return _ISO1_ALIASES.get(base, base)
    two = _STANDARD_VARIETY.get(base) or _iso3_to_iso1().get(base)
    return _ISO1_ALIASES.get(two, two) if two else base
