"""`pipeline export OUT --format megatron|numpy|jsonl [--tokenizer T] --out DIR`: write a
finished job's kept documents (repeats included) as the files a trainer reads."""

from __future__ import annotations

import os
import sys

from pipeline.export.options import DEFAULT_FILE_SIZE, FORMATS, ExportOptions, parse_size


def add_arguments(parser) -> None:
    parser.add_argument("output", help="a finished job's output folder")
    parser.add_argument("--format", choices=FORMATS, required=True)
    parser.add_argument("--tokenizer", help="tokenizer.json, or a folder holding one "
                        "(megatron, numpy)")
    parser.add_argument("--out", required=True, help="folder for the exported files")
    parser.add_argument("--add-bos", help="token (or id) put before each document")
    parser.add_argument("--add-eos", help="token (or id) put after each document")
    parser.add_argument("--file-size", default=str(DEFAULT_FILE_SIZE),
                        help="target size of one output file (e.g. 512MB, 1GB; default 512MB)")
    parser.add_argument("--shuffle", action="store_true",
                        help="a seeded global order across shards (default: the job's order)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reencode", action="store_true",
                        help="encode the texts even when the job's token_ids could be reused")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--local", action="store_true", help="run in this process")
    where.add_argument("--ray", action="store_true", help="run as Ray tasks")
    parser.add_argument("--cpus", type=int, help="encoding threads in this process (default: "
                        "every core; a Ray task encodes on one)")
    parser.add_argument("--overwrite", action="store_true", help="delete --out first")
    parser.add_argument("--keep-work", action="store_true", help="keep --out/_work/")


def main(args) -> int:
    from pipeline.export.run import run_export
    from pipeline.export.source import ExportError

    try:
        options = ExportOptions(
            source=_local_absolute(args.output), out=_local_absolute(args.out),
            format=args.format, tokenizer=_local_absolute(args.tokenizer),
            add_bos=_token(args.add_bos), add_eos=_token(args.add_eos),
            file_size=parse_size(args.file_size), shuffle=args.shuffle, seed=args.seed,
            reencode=args.reencode)
        mode = "local" if args.local else "ray" if args.ray else "auto"
        manifest = run_export(options, mode=mode, overwrite=args.overwrite,
                              keep_work=args.keep_work, say=print, cpus=args.cpus)
    except (ExportError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"exported {manifest['documents']:,} documents, {manifest['tokens']:,} tokens, "
          f"{manifest['bytes']:,} bytes in {len(manifest['files'])} files "
          f"({manifest['dtype'] or 'text'}) -> {options.out}/manifest.json")
    reason = manifest["plan"].get("reuse_reason")
    if reason:
        print(f"token_ids {'reused' if manifest['plan']['reuse_ids'] else 're-encoded'}: {reason}")
    return 0


def _local_absolute(path: str | None) -> str | None:
    return path if path is None or "://" in path else os.path.abspath(path)


def _token(value: str | None) -> str | int | None:
    """A BOS/EOS option as tokenize takes it: an id when it is a number, else the token."""
    return int(value) if value is not None and value.isdigit() else value
