"""The ``lookaside`` command: one entry point, one module per subcommand.

Each module in :mod:`lookaside.commands` defines ``DESCRIPTION``,
``add_arguments(parser)`` and ``run(args) -> int``; adding a subcommand is
adding a row to :data:`COMMANDS`. Only the module of the subcommand being run
is imported, so ``lookaside lb`` never loads the bench's plotting and console
libraries.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from lookaside import __version__, logs, serving

#: name -> (module, one-line help shown by ``lookaside --help``)
COMMANDS: dict[str, tuple[str, str]] = {
    "lb": ("lookaside.commands.lb", "run the load balancer server"),
    "backend": (
        "lookaside.commands.backend",
        "run a backend that serves the demo compute task and reports load to the LB",
    ),
    "agent": (
        "lookaside.commands.agent",
        "register a server lookaside does not run (any language) and follow its health",
    ),
    "client": (
        "lookaside.commands.client",
        "send one compute task: ask the LB, then call the chosen backend",
    ),
    "demo": (
        "lookaside.commands.demo",
        "start an LB and 3 backends, send a few requests, show who served what",
    ),
    "scale-servers": (
        "lookaside.commands.scale_servers",
        "start N backend processes (backend1..backendN) and keep them until Ctrl-C",
    ),
    "scale-clients": (
        "lookaside.commands.scale_clients",
        "run N concurrent clients (GetBackend, then ComputeTask) and print the figures",
    ),
    "status": (
        "lookaside.commands.status",
        "show the LB's services and backends (state, load, last report, picks)",
    ),
    "bench": (
        "lookaside.commands.bench",
        "run the seed's scale experiment (or another scenario) and write a report with plots",
    ),
    "bench-fastpath": (
        "lookaside.commands.bench_fastpath",
        "measure the fast path (local picks from WatchBackends) against GetBackend per request",
    ),
    "bench-lb-cost": (
        "lookaside.commands.bench_lb_cost",
        "measure one LB's CPU per report, GetBackend p99 and watch push cost, before/after",
    ),
    "bench-replica-cost": (
        "lookaside.commands.bench_replica_cost",
        "measure CPU per report of 3 LB replicas over etcd against one in-memory LB",
    ),
    "bench-xds": (
        "lookaside.commands.bench_xds",
        "measure the shares stock xDS clients (grpcio, Node) give backends under the LB's weights",
    ),
    "xds-bootstrap": (
        "lookaside.commands.xds_bootstrap",
        "print the bootstrap file stock gRPC clients use to dial xds:///SERVICE through the LB",
    ),
    "bench-channel": (
        "lookaside.commands.bench_channel",
        "measure lookaside.channel and sync_channel against stock gRPC round_robin, per call",
    ),
}


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows ``(default: X)`` only when there is something to show: not for empty or
    unset defaults, switches, or help that already says what the default is."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        empty = action.default is None or action.default is False or action.default in ("", [])
        if empty or action.default == argparse.SUPPRESS or "default" in text:
            return text
        return super()._get_help_string(action)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; with ``argv``, only the subcommand it names gets its flags loaded."""
    chosen = next((arg for arg in (argv or ()) if not arg.startswith("-")), None)
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
    for name, (module_name, help_text) in COMMANDS.items():
        if argv is not None and name != chosen:
            sub.add_parser(name, help=help_text)
            continue
        module = importlib.import_module(module_name)
        command = sub.add_parser(
            name,
            help=help_text,
            description=module.DESCRIPTION,
            formatter_class=DefaultsHelpFormatter,
        )
        command.add_argument(
            "--log-level",
            default="INFO",
            choices=["DEBUG", "INFO", "WARNING", "ERROR"],
            help="how much to log to stderr (DEBUG adds a line per request)",
        )
        command.add_argument(
            "--log-format",
            default="text",
            choices=logs.FORMATS,
            help="text lines, or json: one JSON object per line (event, backend, service, ...)",
        )
        module.add_arguments(command)
        command.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    logs.configure(args.log_level, args.log_format)
    try:
        return int(args.run(args))
    except ValueError as error:  # configuration mistakes: say what, not a traceback
        parser.exit(2, f"lookaside {args.command}: error: {error}\n")
    except serving.StartupError as error:  # e.g. the port is taken: retrying will not help
        parser.exit(1, f"lookaside {args.command}: {error}\n")
    except KeyboardInterrupt:
        return 130
