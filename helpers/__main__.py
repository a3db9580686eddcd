"""``python -m helpers inspect FILE`` and ``python -m helpers diff A B``.

inspect prints a weight file's layout table and a summary; diff says which tensors of
two files differ and by how much, and exits like ``diff``: 0 same, 1 different, 2 error.
Files: .safetensors, .pt/.pth/.bin (torch.save), .keras/.weights.h5, .npz.
"""

from __future__ import annotations

import argparse
import json
import sys

from helpers._inspect import (
    InspectError,
    as_json,
    compare,
    comparison_as_json,
    describe,
    describe_comparison,
    read_weights,
)
from helpers._layout import LayoutError


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status (0 same / fine, 1 different, 2 error)."""
    parser = argparse.ArgumentParser(prog="python -m helpers", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    inspect = commands.add_parser("inspect", help="print a weight file's layout and a summary")
    inspect.add_argument("file")
    diff = commands.add_parser("diff", help="compare two weight files tensor by tensor")
    diff.add_argument("a")
    diff.add_argument("b")
    for command in (inspect, diff):
        command.add_argument("--json", action="store_true", help="machine-readable output")
    arguments = parser.parse_args(argv)
    try:
        if arguments.command == "inspect":
            weights = read_weights(arguments.file)
            _print(as_json(weights) if arguments.json else describe(weights), arguments.json)
            return 0
        comparison = compare(
            read_weights(arguments.a, values=True), read_weights(arguments.b, values=True)
        )
        shown = (
            comparison_as_json(comparison) if arguments.json else describe_comparison(comparison)
        )
        _print(shown, arguments.json)
        return 0 if comparison.same else 1
    except (InspectError, LayoutError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _print(shown: object, as_json: bool) -> None:
    print(json.dumps(shown, indent=1) if as_json else shown)


if __name__ == "__main__":
    sys.exit(main())
