"""Real job outputs for the browse commands' tests (inspect, whatif, diff): the common_crawl
recipe, variants of a spec with changed options (the same input and every other option), and
the CLI called as a user would."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import duckdb
import yaml

from pipeline.cli import main
from pipeline.runner import run_job
from pipeline.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "examples" / "common_crawl.yaml"


def run_spec(spec: Path, out: Path) -> Path:
    run_job(load_spec(spec, output_override=str(out)), progress=False)
    return out


def run_variant(spec: Path, out: Path, changes: dict[str, dict]) -> Path:
    """Run `spec` again into `out`, with `changes` ({stage: {option: value}}, nested dicts
    merged) applied to its steps. The variant is written beside `spec`, so that relative
    paths still resolve."""
    body = yaml.safe_load(spec.read_text())
    for entry in body["stages"]:
        (name, options), = entry.items()
        if name in changes:
            entry[name] = _merged(options or {}, changes[name])
    path = spec.parent / f"variant-{out.parent.name}-{out.name}.yaml"
    path.write_text(yaml.safe_dump(body), encoding="utf-8")
    return run_spec(path, out)


def _merged(options: dict, changes: dict) -> dict:
    out = copy.deepcopy(options)
    for key, value in changes.items():
        out[key] = _merged(out.get(key) or {}, value) if isinstance(value, dict) else value
    return out


def cli(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def cli_json(capsys, *args: str):
    code, out, err = cli(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def rows(out: Path, side: str, where: str = "true") -> list[dict]:
    """Rows of one side ("data" or "rejected") in file order, by a plain DuckDB query."""
    files = sorted(str(p) for p in (out / side).glob("part-*.parquet"))
    if not files:
        return []
    return duckdb.sql(f"SELECT * EXCLUDE (filename, file_row_number) FROM read_parquet("
                      f"{files!r}, union_by_name = true, filename = true, "
                      f"file_row_number = true) WHERE {where} "
                      "ORDER BY filename, file_row_number").to_arrow_table().to_pylist()
