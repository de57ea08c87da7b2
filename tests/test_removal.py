"""/remove's files: only indexed documents, set aside in the index folder, put back or deleted."""

import errno
import os
import shutil

import pytest

from bot.shelves.removal import REMOVED_DIR, RemoveRefused, removable, set_aside, settle_leftovers
from index.build import build_index
from tests.conftest import make_settings, write_corpus

HANDBOOK = "The office opens at nine. Visitors sign in at the desk.\n"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A corpus of one indexed document beside files the index never holds, and its index."""
    root = tmp_path_factory.mktemp("removal")
    write_corpus(root, {"handbook.txt": HANDBOOK, "guides/travel.md": "Trains are booked at the travel desk.\n",
                        ".git/config": "[core]\n", ".notes.txt": "Hidden notes.\n",
                        "private/keys.pem": "-----BEGIN PRIVATE KEY-----\n"})
    build_index(make_settings(root))
    return root


@pytest.fixture
def settings(built, tmp_path):
    shutil.copytree(built / "corpus", tmp_path / "corpus", symlinks=True)
    shutil.copytree(built / "index", tmp_path / "index")
    return make_settings(tmp_path)


def test_only_documents_the_index_lists_can_be_removed(settings, tmp_path):
    corpus = settings.corpus_dir
    (corpus / "later.txt").write_text("Added after the build.\n")  # in the corpus, not yet in the index
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    (corpus / "escape").symlink_to(tmp_path)  # a folder link leading out of the corpus
    for source, reason in [(".git/config", "not among the documents here"), (".notes.txt", "not among the documents"),
                           ("private/keys.pem", "not among the documents"), ("later.txt", "not among the documents"),
                           ("guides", "not among the documents"), ("escape/secret.txt", "not among the documents"),
                           ("../secret.txt", "not a document name"), (str(outside), "not a document name"),
                           ("https://example.com/a", "web page")]:
        with pytest.raises(RemoveRefused, match=reason) as refused:
            set_aside(settings, source)
        assert str(corpus) not in str(refused.value)
    assert all((corpus / name).exists() for name in (".git/config", ".notes.txt", "private/keys.pem", "later.txt"))
    assert outside.exists() and not (settings.index_dir / REMOVED_DIR).exists()


def test_a_document_is_set_aside_in_the_index_folder_then_put_back_or_deleted(settings):
    original = settings.corpus_dir / "guides" / "travel.md"
    data = original.read_bytes()
    aside = set_aside(settings, "guides/travel.md")
    assert not original.exists() and aside.kept.read_bytes() == data
    assert aside.kept.is_relative_to(settings.index_dir / REMOVED_DIR) and len(aside.sha256) == 64
    aside.restore()
    assert original.read_bytes() == data and not list((settings.index_dir / REMOVED_DIR).iterdir())
    aside = set_aside(settings, "guides/travel.md")
    aside.discard()
    assert not original.exists() and not list((settings.index_dir / REMOVED_DIR).iterdir())


def test_a_document_added_again_meanwhile_is_not_overwritten_by_the_restore(settings):
    aside = set_aside(settings, "handbook.txt")
    (settings.corpus_dir / "handbook.txt").write_text("A new handbook.\n")
    with pytest.raises(RemoveRefused, match="added again meanwhile"):
        aside.restore()
    assert (settings.corpus_dir / "handbook.txt").read_text() == "A new handbook.\n"
    assert aside.kept.read_text() == HANDBOOK  # the old one is kept, not lost


def test_a_link_is_moved_never_its_target(settings, tmp_path):
    target = tmp_path / "outside.txt"
    target.write_text("Outside the corpus.\n")
    link = settings.corpus_dir / "handbook.txt"
    link.unlink()
    link.symlink_to(target)
    aside = set_aside(settings, "handbook.txt")
    assert aside.kept.is_symlink() and not os.path.lexists(link) and target.exists() and aside.sha256 == ""


def test_a_full_disk_leaves_the_document_where_it_was(settings, monkeypatch):
    def full(source, target, **_):  # the index folder on another disk, and that disk full
        raise OSError(errno.ENOSPC, "No space left on device", str(source), None, str(target))

    def cross_device(*_):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "rename", cross_device)
    monkeypatch.setattr(shutil, "copyfile", full)
    with pytest.raises(RemoveRefused, match="^the disk is full at removed/ in the shelf's index folder") as refused:
        set_aside(settings, "handbook.txt")
    assert "nothing was removed" in str(refused.value) and str(settings.index_dir) not in str(refused.value)
    assert (settings.corpus_dir / "handbook.txt").read_text() == HANDBOOK
    assert not list((settings.index_dir / REMOVED_DIR).iterdir())
    assert removable(settings, "handbook.txt") == (settings.corpus_dir / "handbook.txt").resolve()


def test_removals_cut_short_are_finished_by_what_the_index_says(settings):
    data = (settings.corpus_dir / "guides" / "travel.md").read_bytes()
    set_aside(settings, "guides/travel.md")  # then the bot died before rebuilding: the index still lists it
    assert settle_leftovers(settings) == ["guides/travel.md"]
    assert (settings.corpus_dir / "guides" / "travel.md").read_bytes() == data
    set_aside(settings, "guides/travel.md")
    build_index(settings, allow_drop_of=("guides/travel.md",))  # published, then the bot died before deleting
    assert settle_leftovers(settings) == []
    assert not (settings.corpus_dir / "guides" / "travel.md").exists()
    assert not list((settings.index_dir / REMOVED_DIR).iterdir())
