"""`visionkit weights list | fetch`: the pretrained registry and Keras's cache, from a shell.

    visionkit weights list [--backbone NAME] [--json]   registered files and their cache state
    visionkit weights fetch NAME [NAME ...] [--timeout S] [--mirror URL_OR_FOLDER]

`fetch` pre-fills Keras's cache (`$KERAS_HOME/models`), so a machine with network access
can fetch once and the folder can be carried to machines without.
"""

from __future__ import annotations

import argparse
import json

from visionkit.models import pretrained

__all__ = ["add_weights_parser", "weights_command"]


def add_weights_parser(commands: argparse._SubParsersAction) -> None:
    """Adds the `weights` command and its `list` / `fetch` subcommands."""
    weights = commands.add_parser(
        "weights", help="List or fetch pretrained weights (Keras's cache).",
        description="List the registered pretrained weights files and whether Keras's cache "
        "holds them, or fetch them into it (through $VISIONKIT_WEIGHTS_MIRROR, then the "
        "origin).")
    actions = weights.add_subparsers(dest="weights_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="registered files and their cache state")
    listing.add_argument("--backbone", help="only this backbone's files")
    listing.add_argument("--json", action="store_true", help="print JSON")
    fetching = actions.add_parser("fetch", help="fetch files into Keras's cache")
    fetching.add_argument("names", nargs="+", metavar="NAME",
                          help="registry names (see `visionkit weights list`)")
    fetching.add_argument("--timeout", type=float, help="seconds a connection or read may "
                          "wait (default: $VISIONKIT_WEIGHTS_TIMEOUT or 30)")
    fetching.add_argument("--mirror", help="base URL or folder tried before the origin "
                          "(default: $VISIONKIT_WEIGHTS_MIRROR)")
    fetching.add_argument("--force", action="store_true", help="fetch even when cached")


def weights_command(arguments: argparse.Namespace) -> int:
    """Runs `visionkit weights list` or `visionkit weights fetch`; returns the exit status."""
    if arguments.weights_command == "list":
        names = pretrained.available_pretrained(arguments.backbone)
        if not names:
            raise ValueError(f"No pretrained weights are registered for backbone "
                             f"{arguments.backbone!r}.")
        rows = pretrained.pretrained_status(names)
        if arguments.json:
            print(json.dumps(rows, indent=2))
            return 0
        print(f"cache: {pretrained.cache_dir()}/{pretrained.CACHE_SUBDIR}")
        for row in rows:
            state = "cached" if row["cached"] else ("BAD HASH" if row["present"] else "-")
            print(f"{row['name']:<34} {row['backbone']:<20} {row['dataset']:<9} "
                  f"{state:<8} {row['file']}")
        return 0
    for name in arguments.names:
        path = pretrained.fetch(name, timeout=arguments.timeout, mirror=arguments.mirror,
                                force=arguments.force)
        print(f"{name}: {path}", flush=True)
    return 0
