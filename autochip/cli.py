"""The ``autochip`` command: one sub-command per module in :mod:`autochip.commands`."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from autochip.errors import AutochipError

__all__ = ["main"]

# Sub-command name -> module in autochip.commands. Each module defines
# ``add_arguments(parser)`` and ``run(args) -> int`` and a module docstring whose first line is
# the command's one-line help.
COMMANDS: dict[str, str] = {
    "inspect": "autochip.commands.inspect",
    "predict": "autochip.commands.predict",
    "emit": "autochip.commands.emit",
    "synth": "autochip.commands.synth",
    "compress": "autochip.commands.compress",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autochip",
        description="Hardware-aware DNN chip design: PyTorch model -> cost prediction -> "
        "verified Verilog.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        doc = (module.__doc__ or "").strip().splitlines()
        summary = doc[0] if doc else name
        p = sub.add_parser(
            name,
            help=summary,
            description="\n".join(doc),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args._run(args)
    except AutochipError as exc:
        print(f"autochip {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("autochip: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
