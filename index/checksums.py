"""Checksums committed beside a trained model's files, checked before the model is loaded."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from index.errors import VerbatimError
from index.storage.store import file_sha256

CHECKSUMS = "SHA256SUMS.json"


def write_checksums(directory: Path, files: Sequence[str]) -> None:
    """Record the sha256 of a model's files (done once, when the model is trained)."""
    sums = {name: file_sha256(directory / name) for name in files}
    (directory / CHECKSUMS).write_text(json.dumps(sums, indent=2) + "\n", encoding="utf-8")


def recorded_checksums(directory: Path) -> dict[str, str]:
    """name -> sha256 as recorded beside a model (not checked against the files)."""
    sums = json.loads((directory / CHECKSUMS).read_text(encoding="utf-8"))
    if not isinstance(sums, dict):
        raise ValueError(f"{CHECKSUMS} is not a mapping")
    return sums


def verify_checksums(directory: Path, files: Sequence[str], what: str,
                     error: type[VerbatimError] = VerbatimError) -> None:
    """Raise `error` unless every file matches its recorded checksum."""
    try:
        sums = recorded_checksums(directory)
        for name in files:
            if file_sha256(directory / name) != sums[name]:
                raise error(f"the {what}'s {name} does not match its checksum; reinstall Verbatim")
    except (OSError, ValueError, KeyError) as reason:
        raise error(f"the {what} in {directory} cannot be read ({reason}); reinstall Verbatim") from reason
