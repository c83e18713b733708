"""Language labels of fastText LID models -> one code per language.

The rule: ISO 639-1 where the language has one, else ISO 639-3 (or the model's own code when
it has neither). Applied to every label a model emits and to every code a user writes in a
spec, so `keep: [eng_Latn]`, `keep: [eng]` and `keep: [en]` all mean `en`.

- `__label__en` (lid.176, OpenLID-style two letters): kept as is, except `nb` -> `no`
  (lid.176 calls Bokmål `no`; `nn` stays Nynorsk).
- `__label__eng_Latn` (GlotLID / NLLB: ISO 639-3 + script): the script is dropped and the
  639-3 code mapped to 639-1 (`eng` -> `en`, `rus` -> `ru`). Scripts are not kept apart:
  `srp_Cyrl` and `srp_Latn` are both `sr`.
- Standard varieties that GlotLID labels as individual languages map to their macrolanguage's
  639-1 code, because that is what a 639-1 model says for the same text: `arb` -> `ar`,
  `cmn` -> `zh`, `zsm` -> `ms`, `pes` -> `fa`, `swh` -> `sw`, ... (`_STANDARD_VARIETY`).
  Other varieties stay apart, as lid.176 keeps them apart (`arz`, `yue`, `wuu`, `azb`).
- lid.176 uses Wikipedia codes; the one that clashes with ISO is `als` (Alemannic), mapped to
  `gsw`. With a script suffix `als_Latn` is ISO's Tosk Albanian, mapped to `sq`.
- `sh` (Serbo-Croatian, lid.176) and `hbs` stay `sh`; `bs`, `hr`, `sr` stay separate.
"""

from __future__ import annotations

from functools import lru_cache

LABEL_PREFIX = "__label__"

# ISO 639-3 (and 639-2/B) -> ISO 639-1, for every language that has a 639-1 code.
_ISO3_TO_ISO1 = dict(pair.split(":") for pair in """
aar:aa abk:ab ave:ae afr:af aka:ak amh:am arg:an ara:ar asm:as ava:av aym:ay aze:az bak:ba
bel:be bul:bg bih:bh bis:bi bam:bm ben:bn bod:bo tib:bo bre:br bos:bs cat:ca che:ce cha:ch
cos:co cre:cr ces:cs cze:cs chu:cu chv:cv cym:cy wel:cy dan:da deu:de ger:de div:dv dzo:dz
ewe:ee ell:el gre:el eng:en epo:eo spa:es est:et eus:eu baq:eu fas:fa per:fa ful:ff fin:fi
fij:fj fao:fo fra:fr fre:fr fry:fy gle:ga gla:gd glg:gl grn:gn guj:gu glv:gv hau:ha heb:he
hin:hi hmo:ho hrv:hr hat:ht hun:hu hye:hy arm:hy her:hz ina:ia ind:id ile:ie ibo:ig iii:ii
ipk:ik ido:io isl:is ice:is ita:it iku:iu jpn:ja jav:jv kat:ka geo:ka kon:kg kik:ki kua:kj
kaz:kk kal:kl khm:km kan:kn kor:ko kau:kr kas:ks kur:ku kom:kv cor:kw kir:ky lat:la ltz:lb
lug:lg lim:li lin:ln lao:lo lit:lt lub:lu lav:lv mlg:mg mah:mh mri:mi mao:mi mkd:mk mac:mk
mal:ml mon:mn mar:mr msa:ms may:ms mlt:mt mya:my bur:my nau:na nob:no nde:nd nep:ne ndo:ng
nld:nl dut:nl nno:nn nor:no nbl:nr nav:nv nya:ny oci:oc oji:oj orm:om ori:or oss:os pan:pa
pli:pi pol:pl pus:ps por:pt que:qu roh:rm run:rn ron:ro rum:ro rus:ru kin:rw san:sa srd:sc
snd:sd sme:se sag:sg sin:si slk:sk slo:sk slv:sl smo:sm sna:sn som:so sqi:sq alb:sq srp:sr
ssw:ss sot:st sun:su swe:sv swa:sw tam:ta tel:te tgk:tg tha:th tir:ti tuk:tk tgl:tl fil:tl
tsn:tn ton:to tur:tr tso:ts tat:tt twi:tw tah:ty uig:ug ukr:uk urd:ur uzb:uz ven:ve vie:vi
vol:vo wln:wa wol:wo xho:xh yid:yi yor:yo zha:za zho:zh chi:zh zul:zu hbs:sh
""".split())

# Individual languages that are the standard variety a macrolanguage's 639-1 code denotes.
_STANDARD_VARIETY = dict(pair.split(":") for pair in """
arb:ar cmn:zh zsm:ms pes:fa swh:sw ekk:et lvs:lv npi:ne khk:mn uzn:uz azj:az plt:mg ydd:yi
gaz:om kmr:ku pbt:ps ory:or gug:gn ayr:ay quy:qu quz:qu ike:iu kpv:kv fuv:ff als:sq
""".split())

# Two-letter codes that name the same language as another one we report.
_ISO1_ALIASES = {"nb": "no", "in": "id", "iw": "he", "ji": "yi", "mo": "ro", "tw": "ak"}

# Wikipedia-style codes (lid.176) that are not the ISO code of their language.
_WIKIPEDIA_CODES = {"als": "gsw"}


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
    return _STANDARD_VARIETY.get(base) or _ISO3_TO_ISO1.get(base, base)
