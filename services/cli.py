"""`triggerline`: one console script for every service and operator command.

One container image serves every Deployment: the first argument picks the process.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from services.common.errors import ConfigurationError
from services.ops.errors import OperatorError

# command -> (module with a `main(argv) -> int`, help line). Imported lazily so that
# `triggerline mailer` never imports faust, and a broken optional part cannot block the others.
COMMANDS: dict[str, tuple[str, str]] = {
    "simulator": ("services.simulator.main", "upstream stand-in: pipeline consume API and IMS"),
    "smtp-sink": ("services.simulator.smtp_sink", "SMTP sink on loopback writing .eml files"),
    "auth": ("services.auth.main", "IMS token service for the other services"),
    "fetcher": ("services.fetcher.main", "pipelined equivalent: upstream stream -> triggers.raw"),
    "processor": ("services.processor.main", "faust-streaming worker: triggers -> email requests"),
    "mailer": ("services.mailer.main", "email requests -> SMTP, exactly once per key"),
    "feedback": ("services.feedback.main", "one-click unsubscribe, bounces and complaints"),
    "topics": ("services.ops.topics", "create or list the declared Kafka topics"),
    "db": ("services.ops.database", "upgrade the database schema, seed demo profiles"),
    "stack": ("services.ops.stack", "run the whole local stack (what `make run` calls)"),
    "config": ("services.ops.configuration", "check settings and routing, print the reference"),
    "templates": ("services.ops.templates", "check campaign templates; preview one email (.eml)"),
    "manifests": ("services.ops.manifests", "regenerate the Kubernetes files derived from code"),
    "status": ("services.ops.status", "consumer lag, dead letters waiting, fetcher indicators"),
    "replay": ("services.ops.replay", "rewind a stopped group, or re-drive dead letters"),
    "profiles": ("services.ops.profiles", "import profiles or a suppression list (CSV, JSONL)"),
    "outcomes": ("services.ops.outcomes", "what became of the triggers: counts, in = out per hour"),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="triggerline",
        description="Behavioural triggers to personalised email, on Apache Kafka.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_line) in COMMANDS.items():
        sub.add_parser(name, help=help_line, add_help=False)
    return parser


def _warn_unknown_variables(command: str) -> None:
    """A `TRIGGERLINE_*` variable no setting reads is usually a typo: say so before starting."""
    from services.common.settings import unknown_variables
    from services.ops.configuration import all_settings

    for name in unknown_variables(all_settings()):
        print(
            f"triggerline {command}: warning: {name} is set but no setting reads it",
            file=sys.stderr,
        )


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    if not args or args[0] in ("-h", "--help") or args[0] not in COMMANDS:
        parser.print_help()
        return 0 if not args or args[0] in ("-h", "--help") else 2
    _warn_unknown_variables(args[0])
    module_name, _ = COMMANDS[args[0]]
    entry: Callable[[list[str]], int] = importlib.import_module(module_name).main
    try:
        return entry(args[1:])
    except ConfigurationError as exc:
        print(f"triggerline {args[0]}: {exc}", file=sys.stderr)
        return 78  # EX_CONFIG
    except OperatorError as exc:  # a bad argument or input file: nothing was changed
        print(f"triggerline {args[0]}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
