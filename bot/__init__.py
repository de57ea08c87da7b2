"""Answering with verbatim quotes, and the interfaces over it (CLI, Discord)."""
