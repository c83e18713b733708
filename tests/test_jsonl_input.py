"""The JSONL reader keeps every field of every line, whichever line of a batch has it."""

from __future__ import annotations

from pipeline.io.jsonl_input import JsonlInput
from pipeline.spec import InputSpec
from tests.conftest import write_jsonl


def test_a_field_missing_from_a_batchs_first_line_is_kept_for_the_others(tmp_path):
    rows = [{"text": "no url here"}, {"text": "one", "url": "https://a.org/1", "lang": "en"},
            {"text": "two", "url": "https://a.org/2", "extra": {"k": 1}},
            {"text": "three", "extra": "now a string"}]
    path = write_jsonl(tmp_path / "in.jsonl", rows)
    spec = InputSpec(format="jsonl", paths=[str(path)])
    reader = JsonlInput()
    shard = {"path": str(path), "start": 0, "end": None, "name": "in.jsonl"}
    batches = list(reader.read(spec, shard, "text", batch_rows=100))
    table = batches[0].table
    assert table["url"].to_pylist() == [None, "https://a.org/1", "https://a.org/2", None]
    assert table["lang"].to_pylist() == [None, "en", None, None]
    # a field whose type changes between lines is kept as JSON text, not dropped
    assert table["extra"].to_pylist() == [None, None, '{"k": 1}', '"now a string"']
