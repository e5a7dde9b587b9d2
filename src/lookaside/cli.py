"""The ``lookaside`` command: one entry point, one module per subcommand.

Each module in :mod:`lookaside.commands` defines ``NAME``, ``HELP``,
``DESCRIPTION``, ``add_arguments(parser)`` and ``run(args) -> int``; adding a
subcommand is adding it to ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence

from lookaside import __version__, logs

COMMANDS = (
    "lookaside.commands.lb",
    "lookaside.commands.backend",
    "lookaside.commands.client",
    "lookaside.commands.demo",
    "lookaside.commands.scale_servers",
    "lookaside.commands.scale_clients",
    "lookaside.commands.bench",
    "lookaside.commands.bench_fastpath",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lookaside",
        description=(
            "A gRPC look-aside load balancer. Backends register with the LB server and "
            "report their load; clients ask the LB which backend to use, then call it "
            "directly."
        ),
        epilog="Run 'lookaside COMMAND --help' for the flags of one command.",
    )
    parser.add_argument("--version", action="version", version=f"lookaside {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMANDS:
        module = importlib.import_module(module_name)
        command = sub.add_parser(
            module.NAME,
            help=module.HELP,
            description=module.DESCRIPTION,
            formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        )
        command.add_argument(
            "--log-level",
            default="INFO",
            choices=["DEBUG", "INFO", "WARNING", "ERROR"],
            help="how much to log to stderr (DEBUG adds a line per request)",
        )
        module.add_arguments(command)
        command.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logs.configure(args.log_level)
    try:
        return int(args.run(args))
    except ValueError as error:  # configuration mistakes: say what, not a traceback
        parser.exit(2, f"lookaside {args.command}: error: {error}\n")
    except KeyboardInterrupt:
        return 130
