"""The browse commands' entry points for `pipeline/cli.py`: each adds its sub-command and
returns its handler, which prints a BrowseError as `error: ...` (exit status 2)."""

from __future__ import annotations

import importlib
import sys

# command -> (module under pipeline.browse, one line of help)
COMMANDS = {
    "inspect": ("inspect", "read a job's kept or rejected documents by stage, reason, filter"),
    "whatif": ("whatif", "what other thresholds would keep, from the columns a run wrote"),
    "diff": ("diff", "two runs side by side: funnels and the documents only one kept"),
}


def add_browse_commands(sub) -> dict:
    handlers = {}
    for command, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(f"pipeline.browse.{module_name}")
        module.add_arguments(sub.add_parser(command, help=help_text,
                                            description=module.__doc__.split("\n\n")[0]))
        handlers[command] = _reporting_errors(module.main)
    return handlers


def _reporting_errors(main):
    from pipeline.browse.output import BrowseError

    def handler(args) -> int:
        try:
            return main(args)
        except BrowseError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    return handler
