"""Commands that a message tells the user to run, spelled for the index they asked about."""

from __future__ import annotations

import argparse
import re
import shlex

# The options that choose a corpus and its index; a hint must repeat them to reach the same index.
INDEX_OPTIONS = ("shelf", "corpus", "index")
_BUILD = re.compile(r"`verbatim index build\b")


def build_command(arguments: argparse.Namespace) -> str:
    """`verbatim index build` with the --shelf/--corpus/--index options `arguments` were given."""
    words = ["verbatim", "index", "build"]
    for option in INDEX_OPTIONS:
        if hasattr(arguments, option):  # options are SUPPRESSed: present only when given
            words += [f"--{option}", str(getattr(arguments, option))]
    return shlex.join(words)


def with_build_command(message: str, arguments: argparse.Namespace) -> str:
    """`message` with every `verbatim index build …` it suggests spelled with the options of `arguments`."""
    return _BUILD.sub(lambda _: "`" + build_command(arguments), message)
