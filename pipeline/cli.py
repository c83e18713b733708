"""`pipeline` command line: run, validate, stages, report."""

from __future__ import annotations

import argparse
import json
import os
import sys

from pipeline.browse.commands import add_browse_commands
from pipeline.spec import SpecError, load_spec


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pipeline", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a spec (embedded local Ray unless RAY_ADDRESS is set)")
    run.add_argument("spec")
    run.add_argument("--output", help="override output.path (relative to the current folder)")
    run.add_argument("--overwrite", action="store_true",
                     help="delete an existing output folder first instead of resuming it")
    run.add_argument("--keep-work", action="store_true",
                     help="keep intermediate files under _work/ after success")
    run.add_argument("--no-progress", action="store_true")

    validate = sub.add_parser("validate", help="check a spec and print the resolved plan")
    validate.add_argument("spec")

    stages = sub.add_parser("stages", help="list installed stages and their config")
    stages.add_argument("--json", action="store_true")

    report = sub.add_parser("report", help="(re)build report/ for a job output folder")
    report.add_argument("output")

    sub.add_parser("train-classifier", add_help=False,
                   help="train a classifier: fastText (--positive, --negative) or a head "
                        "on an encoder from a job's labels (--from; see --help)")

    sub.add_parser("serve", add_help=False,
                   help="start the control plane: REST API, job store, web dashboard "
                        "(`pipeline serve --help` lists its options)")

    argv = sys.argv[1:] if argv is None else list(argv)
    # These two parse their own options (shared with `python -m pipeline.<module>`).
    if argv[:1] == ["train-classifier"]:
        from stages._classify.train import main as train_main
        return train_main(argv[1:])
    if argv[:1] == ["serve"]:
        from pipeline.api.server import main as serve_main
        return serve_main(argv[1:])
    decontam = sub.add_parser("decontam-report",
                              help="benchmark items the decontam stage found in a job's output")
    decontam.add_argument("output")
    decontam.add_argument("--top", type=int, default=10)
    decontam.add_argument("--json", action="store_true")
    browse = add_browse_commands(sub)  # inspect, whatif, diff (pipeline/browse/)
    from pipeline.export import command as export_command
    export_command.add_arguments(sub.add_parser("export", help="write a job's kept documents "
                                                "as Megatron, numpy or JSONL training files"))

    args = parser.parse_args(argv)
    try:
        return ({"run": _run, "validate": _validate, "stages": _stages, "report": _report,
                 "decontam-report": _decontam_report, "export": export_command.main}
                | browse)[args.command](args)
    except SpecError as exc:
        print(f"error: invalid spec\n{exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `pipeline ... | head` stopped reading: not an error to show
        # stdout to /dev/null, so that Python's own flush at exit does not fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # what a shell reports for a writer stopped by SIGPIPE
    finally:
        from pipeline.ray_env import shutdown_embedded

        shutdown_embedded()  # after the output is printed


def _run(args) -> int:
    from pipeline.runner import JobError, run_job

    spec = load_spec(args.spec, output_override=args.output)
    try:
        result = run_job(spec, progress=not args.no_progress, overwrite=args.overwrite,
                         keep_work=args.keep_work)
    except JobError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"job {spec.name}: {result.shards} shards ({result.skipped} already done), "
          f"{result.seconds:.1f}s -> {result.output}")
    for stage in result.stages:
        print(f"  {stage['stage']:<16} in {stage['in']:>10,}  kept {stage['kept']:>10,}  "
              f"rejected {stage['rejected']:>10,}")
    for failure in result.failed:
        print(f"  failed shard {failure['shard']} ({failure['source']}): "
              f"{failure['error'].splitlines()[0]}")
    print(f"report: {result.output}/report/index.html")
    return 0


def _validate(args) -> int:
    from pipeline.io import formats
    from pipeline.runner import segments_of

    spec = load_spec(args.spec)
    shards = formats.get(spec.input.format).plan_shards(spec.input, spec.input_files)
    print(f"spec {args.spec}: OK")
    print(f"job:    {spec.name}")
    print(f"input:  {spec.input.format}, {len(spec.input_files)} files, {len(shards)} shards")
    print(f"        columns: {', '.join(spec.input_columns)}")
    print(f"output: {spec.output.path}")
    for segment in segments_of(spec):
        steps = segment.all_steps
        if not steps and segment.index:
            continue
        print(f"segment {segment.index}" + (" (global)" if segment.global_step else " (map)"))
        for step in steps:
            config = json.dumps(step.stage.config.model_dump(mode="json"))
            res = step.stage.resources()
            print(f"  {step.index + 1}. {step.name} {config}  [cpus={res.cpus:g}"
                  f"{f', gpus={res.gpus:g}' if res.gpus else ''}]")
            print(f"     -> columns: {', '.join(spec.columns_after[step.index])}")
    return 0


def _stages(args) -> int:
    from pipeline.registry import all_stages
    from pipeline.stage import describe_config

    listing = {}
    for name, cls in all_stages().items():
        stage = cls()
        listing[name] = {
            "description": cls.description, "global": cls.is_global,
            "requires": list(stage.requires()), "produces": list(stage.produces()),
            "config": [f.__dict__ for f in describe_config(cls.config_model)]}
    if args.json:
        print(json.dumps(listing, indent=1, default=str))
        return 0
    for name, info in listing.items():
        kind = "global" if info["global"] else "map"
        print(f"{name} ({kind}): {info['description']}")
        print(f"  requires: {', '.join(info['requires']) or '-'}; "
              f"produces: {', '.join(info['produces']) or '-'}")
        for f in info["config"]:
            doc = f"  # {f['description']}" if f["description"] else ""
            print(f"  {f['name']}: {f['type']} = {f['default']!r}{doc}")
    return 0


def _report(args) -> int:
    from pipeline.report import write_report

    try:
        summary = write_report(args.output)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"docs": summary["docs"], "funnel": summary["funnel"]}, indent=1))
    print(f"report: {args.output}/report/index.html")
    return 0


def _decontam_report(args) -> int:
    from stages._decontam.report import main as report_main

    return report_main([args.output, "--top", str(args.top)] + (["--json"] if args.json else []))


if __name__ == "__main__":
    sys.exit(main())
