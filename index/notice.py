"""Warnings for the person running Verbatim: one line each on stderr (the bot's log when it runs as a service)."""

from __future__ import annotations

import sys


def warn(message: str) -> None:
    """Print one warning line on stderr."""
    print(f"verbatim: warning: {message}", file=sys.stderr, flush=True)
