"""Specific errors with messages a user can act on."""


class VerbatimError(Exception):
    """Base of every error Verbatim reports to a user as one line."""


# Not a VerbatimError: a build skips such a file with its reason (index/sources/load.py, index/sources/formats.py) and goes on.
class Unreadable(Exception):
    """A file that cannot become a document: `reason` is a stable category, `detail` the specifics."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason} ({detail})" if detail else reason)
        self.reason = reason
        self.detail = detail


class CorpusMissing(VerbatimError):
    """The corpus directory does not exist."""


class IndexMissing(VerbatimError):
    """No index has been built at the configured path."""


class IndexMismatch(VerbatimError):
    """The index on disk was built with other settings (model, format, chunking)."""


class IndexCorrupt(VerbatimError):
    """The index files are damaged or incomplete."""


class ModelUnavailable(VerbatimError):
    """The embedding model could not be loaded."""


class BuildLocked(VerbatimError):
    """Another build holds the index lock."""


class DocumentNotIndexed(VerbatimError):
    """The named document is not in the index."""


class BadQuestion(VerbatimError):
    """The question cannot be answered as asked (empty, too long)."""


class WouldDropDocuments(VerbatimError):
    """A build would publish an index missing all or most of the documents indexed now."""


class ClusterUnavailable(VerbatimError):
    """A distributed build was asked for, but Ray is not installed or the cluster can't be reached."""


class DiskFull(VerbatimError):
    """A write failed for want of space (ENOSPC, or a quota); the message names where."""


class IndexUnwritable(VerbatimError):
    """A build could not write its new index; the index in use is left as it was."""
