"""Shelves: named corpora, their sources, uploads, rebuilds, removals and feedback."""
