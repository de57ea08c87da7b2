"""The `verbatim` command line: its commands, how answers print, and `verbatim doctor` and `eval`."""
