"""`python -m bot.cli`: the `verbatim` command."""

from bot.cli.main import run

run()
