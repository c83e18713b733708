"""Spec validation: every mistake fails before any work, naming its YAML line and a fix."""

from __future__ import annotations

import pyarrow as pa
import pytest

from pipeline.registry import register
from pipeline.stage import Resources, Stage, StageConfig, keep_all
from pipeline.spec import SpecError, load_spec
from tests.conftest import write_jsonl, write_spec


@pytest.fixture
def data_dir(tmp_path):
    write_jsonl(tmp_path / "in" / "a.jsonl", [{"text": "one two three"}])
    return tmp_path


def spec_error(tmp_path, body: str) -> str:
    path = write_spec(tmp_path / "job.yaml", body)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    return str(info.value)


GOOD = """\
name: demo
input: {format: jsonl, paths: [in/*.jsonl]}
output: {path: out}
stages:
  - length_filter: {min_words: 2}
"""


def test_valid_spec_resolves_paths_and_defaults(data_dir):
    spec = load_spec(write_spec(data_dir / "job.yaml", GOOD))
    assert spec.input_files == [str(data_dir / "in" / "a.jsonl")]
    assert spec.output.path == str(data_dir / "out")
    assert spec.steps[0].stage.config.max_words == 100_000
    assert "n_words" in spec.columns_after[0]


def test_unknown_stage_names_line_and_suggests(data_dir):
    message = spec_error(data_dir, GOOD.replace("length_filter", "lenght_filter"))
    assert "line 5" in message
    assert "unknown stage 'lenght_filter'" in message
    assert "did you mean 'length_filter'" in message


def test_unknown_key_names_line_and_suggests(data_dir):
    message = spec_error(data_dir, GOOD.replace("min_words: 2", "min_word: 2"))
    assert "line 5" in message and "min_word" in message
    assert "did you mean 'min_words'" in message


def test_unknown_top_level_key(data_dir):
    message = spec_error(data_dir, GOOD + "stagez: []\n")
    assert "line 6" in message and "unknown key 'stagez'" in message


def test_wrong_type_names_line(data_dir):
    message = spec_error(data_dir, GOOD.replace("min_words: 2", "min_words: lots"))
    assert "line 5" in message
    assert "length_filter.min_words" in message and "'lots'" in message


def test_invalid_config_combination(data_dir):
    message = spec_error(data_dir, GOOD.replace("min_words: 2", "min_words: 9, max_words: 3"))
    assert "line 5" in message and "greater than max_words" in message


def test_missing_input_section(data_dir):
    message = spec_error(data_dir, "name: demo\noutput: {path: out}\n")
    assert "missing required key 'input'" in message and "format: parquet" in message


def test_input_paths_that_match_nothing(data_dir):
    message = spec_error(data_dir, GOOD.replace("in/*.jsonl", "nowhere/*.jsonl"))
    assert "line 2" in message and "no input files match" in message


def test_unknown_input_format(data_dir):
    message = spec_error(data_dir, GOOD.replace("format: jsonl", "format: csvx"))
    assert "line 2" in message and "unknown input format 'csvx'" in message


def test_unknown_format_option(data_dir):
    message = spec_error(data_dir, GOOD.replace("format: jsonl,", "format: jsonl, shard_rowz: 5,"))
    assert "line 2" in message and "shard_rowz" in message


class _NeedsScore(Stage):
    """A real stage registered by this test: it reads a column only `_MakesScore` adds."""

    name = "test_needs_score"

    def requires(self):
        return ("text", "probe_score")

    def process(self, table):
        return keep_all(table)


class _MakesScore(Stage):
    name = "test_makes_score"

    def produces(self):
        return ("probe_score",)

    def process(self, table):
        return keep_all(table.append_column("probe_score", pa.array([1.0] * table.num_rows)))


register(_NeedsScore)
register(_MakesScore)


def test_stage_needing_missing_column_names_line_and_fix(data_dir):
    body = GOOD + "  - test_needs_score: {}\n  - test_makes_score: {}\n"
    message = spec_error(data_dir, body)
    assert "line 6" in message
    assert "needs column 'probe_score'" in message
    assert "add 'test_makes_score' before it" in message
    fixed = GOOD + "  - test_makes_score: {}\n  - test_needs_score: {}\n"
    spec = load_spec(write_spec(data_dir / "fixed.yaml", fixed))
    assert [s.name for s in spec.steps] == ["length_filter", "test_makes_score",
                                            "test_needs_score"]


def test_yaml_syntax_error_has_line(data_dir):
    message = spec_error(data_dir, GOOD + "  - length_filter: {min_words: [\n")
    assert "line" in message and "YAML syntax error" in message


def test_stage_entry_shape(data_dir):
    message = spec_error(data_dir, GOOD.replace("- length_filter: {min_words: 2}",
                                                "- length_filter: {}\n    other: {}"))
    assert "line 5" in message and "one mapping" in message


class _PackageConfig(StageConfig):
    package: str = "yaml"
    gpus: float = 0


class _NeedsPackage(Stage):
    """A stage whose workers import `package` (the [llm] extra would install it)."""

    name = "test_needs_package"
    config_model = _PackageConfig

    def packages(self):
        return {self.config.package: "llm"}

    def resources(self):
        return Resources(gpus=self.config.gpus)

    def process(self, table):
        return keep_all(table)


register(_NeedsPackage)


def test_stage_whose_package_is_missing_names_line_and_extra(data_dir):
    message = spec_error(data_dir, GOOD + "  - test_needs_package: {package: no_such_pkg_4711}\n")
    assert "line 6" in message
    assert "stage 'test_needs_package' needs the Python package 'no_such_pkg_4711'" in message
    assert "pip install 'curation-pipeline[llm]'" in message
    # a submodule of a missing package is missing too, not an import crash
    assert "'no_such_pkg_4711.models'" in spec_error(
        data_dir, GOOD + "  - test_needs_package: {package: no_such_pkg_4711.models}\n")
    installed = load_spec(write_spec(data_dir / "ok.yaml", GOOD + "  - test_needs_package: {}\n"))
    assert installed.steps[1].stage.packages() == {"yaml": "llm"}


def test_gpu_stage_packages_are_left_to_where_its_workers_run(data_dir):
    # GPU workers may run another image than the one validating (deploy/: the gpu target)
    body = GOOD + "  - test_needs_package: {package: no_such_pkg_4711, gpus: 1}\n"
    spec = load_spec(write_spec(data_dir / "gpu.yaml", body))
    assert spec.steps[1].stage.resources().gpus == 1
