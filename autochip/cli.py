"""The ``autochip`` command: one sub-command per module in :mod:`autochip.commands`."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from autochip.errors import AutochipError

__all__ = ["COMMANDS", "main"]

# Sub-command name -> (module in autochip.commands, one-line help). Each module defines
# ``add_arguments(parser)`` and ``run(args) -> int``; its docstring is the command's long help.
# Only the module of the command being run is imported, so ``autochip --help`` stays fast.
COMMANDS: dict[str, tuple[str, str]] = {
    "inspect": (
        "autochip.commands.inspect",
        "layer table of a model: shapes, MACs, params, arithmetic",
    ),
    "predict": (
        "autochip.commands.predict",
        "predict latency, energy and area/resources of an accelerator",
    ),
    "emit": ("autochip.commands.emit", "render the Verilog of a PE array for a hardware spec"),
    "synth": (
        "autochip.commands.synth",
        "synthesise emitted RTL with Yosys (and nextpnr for Fmax)",
    ),
    "explore": (
        "autochip.commands.explore",
        "search the core's design space: Pareto front, chosen",
    ),
    "build": (
        "autochip.commands.build",
        "compile a model into a complete accelerator: RTL, program, DRAM image, testbench",
    ),
    "sim": (
        "autochip.commands.sim",
        "simulate a built accelerator on a whole network, bit-exact against the reference",
    ),
    "compress": (
        "autochip.commands.compress",
        "train a quantised, binary or adder network and export it",
    ),
    "codesign": (
        "autochip.commands.codesign",
        "co-design compression and hardware: front of accuracy vs latency/energy/resources",
    ),
    "list": ("autochip.commands.list", "list target platforms or the models of the zoo"),
}


def _version() -> str:
    """The installed distribution's version (package metadata)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("autochip")
    except PackageNotFoundError:
        return "(not installed: no package metadata)"


def _requested(argv: Sequence[str]) -> str | None:
    for arg in argv:
        if not arg.startswith("-"):
            return arg if arg in COMMANDS else None
    return None


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autochip",
        description="Hardware-aware DNN chip design: PyTorch model -> cost prediction -> "
        "verified Verilog.",
    )
    parser.add_argument("--version", action="version", version=f"autochip {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = _requested(argv)
    for name, (module_name, summary) in COMMANDS.items():
        if name != chosen:
            sub.add_parser(name, help=summary, add_help=False)
            continue
        module = importlib.import_module(module_name)
        p = sub.add_parser(
            name,
            help=summary,
            description=(module.__doc__ or summary).strip(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; bad input is one message on stderr and exit code 2, never a traceback.

    Model code run by a command (a user's ``.py`` file) cannot end autochip: a ``SystemExit``
    raised while the command runs is reported as an error, and stdout is restored afterwards.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser(argv)
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2), already printed
        return exc.code if isinstance(exc.code, int) else 2
    stdout = sys.stdout
    try:
        code: int = args._run(args)
    except AutochipError as exc:
        print(f"autochip {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:
        print(
            f"autochip {args.command}: error: code run by the command called "
            f"sys.exit({exc.code!r}); expected it to return",
            file=sys.stderr,
        )
        return 2
    except OSError as exc:  # the file system refused a read or write (full disk, permissions)
        where = f" '{exc.filename}'" if exc.filename else ""
        print(
            f"autochip {args.command}: error: file system error{where}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("autochip: interrupted", file=sys.stderr)
        return 130
    finally:
        sys.stdout = stdout
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
