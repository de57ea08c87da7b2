import os

import pytest

from index.errors import CorpusMissing
from index.load import Unreadable, discover, read_document
from tests.conftest import write_corpus


def test_discover_finds_supported_files_recursively_with_relative_names(tmp_path):
    corpus = write_corpus(tmp_path, {"a.txt": "A.", "sub/b.md": "B.", "c.csv": "x", ".hidden/d.txt": "D."})
    files, skipped = discover(corpus)
    assert [f.source for f in files] == ["a.txt", "sub/b.md"]
    assert skipped == []


def test_missing_corpus_is_a_clear_error(tmp_path):
    with pytest.raises(CorpusMissing, match="corpus directory not found"):
        discover(tmp_path / "nope")


def test_symlinks_outside_the_corpus_are_skipped_and_loops_do_not_hang(tmp_path):
    corpus = write_corpus(tmp_path, {"a.txt": "A."})
    (tmp_path / "outside.txt").write_text("secret")
    os.symlink(tmp_path / "outside.txt", corpus / "link.txt")
    os.symlink(corpus, corpus / "loopdir")
    os.symlink(corpus / "self.txt", corpus / "self.txt")
    files, skipped = discover(corpus)
    assert [s.source for s in skipped] == ["link.txt"]
    assert "self.txt" in [f.source for f in files]
    with pytest.raises(Unreadable):
        read_document(next(f for f in files if f.source == "self.txt"), 10**6)


@pytest.mark.parametrize(
    "content, reason",
    [(b"", "empty"), (b"  \n\t", "empty"), (b"\xff\xfe bad", "not valid UTF-8"), (b"ab\x00cd", "binary"), (b"x" * 2000, "larger")],
)
def test_unusable_files_raise_with_the_reason(tmp_path, content, reason):
    corpus = write_corpus(tmp_path, {"bad.txt": content})
    (file,) = discover(corpus)[0]
    with pytest.raises(Unreadable, match=reason):
        read_document(file, max_bytes=1000)


def test_read_document_keeps_text_exact_but_drops_a_byte_order_mark(tmp_path):
    corpus = write_corpus(tmp_path, {"a.md": "\ufeff# Title\r\n\r\nBody.\r\n".encode()})
    (file,) = discover(corpus)[0]
    document = read_document(file, 10**6)
    assert document.text == "# Title\r\n\r\nBody.\r\n"
    assert document.kind == "md" and len(document.sha256) == 64
