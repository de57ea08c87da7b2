import io
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings as hypothesis_settings, strategies as st

from bot.shelves.uploads import (
    ADDED, AUTOCOMPLETE_MAX, MAX_NAME_BYTES, MAX_NAME_CHARS, REMOVED, UPLOADS_DIR, Ledger, UploadLimits, UploadRefused,
    safe_name, save_upload,
)
from config.settings import InvalidSetting
from index.sources.load import discover, read_document
from tests.conftest import make_settings
from tests.documents import make_docx
from tests.pdfs import make_pdf

LIMITS = UploadLimits(max_bytes=20_000_000, max_files=5)
PDF = make_pdf([["Leave policy", "Every employee gets twenty-seven days of paid leave a year."]])


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "handbook.txt").write_text("The office opens at nine.\n", encoding="utf-8")
    return corpus


def _loaded(corpus: Path, saved: Path):
    found, skipped = discover(corpus)
    (file,) = [f for f in found if f.path == saved.resolve()]
    assert not skipped
    return read_document(file, LIMITS.max_bytes)


def test_a_real_pdf_and_docx_are_saved_under_uploads_and_then_load(corpus):
    docx = make_docx([(1, "Travel"), (0, "Trains are booked through the travel desk.")])
    saved_pdf = save_upload(corpus, "leave.pdf", PDF, LIMITS)
    saved_docx = save_upload(corpus, "Travel Policy.docx", docx, LIMITS)
    assert saved_pdf == corpus / "uploads" / "leave.pdf" and saved_pdf.read_bytes() == PDF
    assert "twenty-seven days" in _loaded(corpus, saved_pdf).text
    assert "travel desk" in _loaded(corpus, saved_docx).text
    assert not [p for p in (corpus / "uploads").iterdir() if p.name.startswith(".")]  # no drafts left behind


def test_a_file_over_the_size_limit_is_refused_before_anything_is_written(corpus):
    with pytest.raises(UploadRefused, match="30.0 MB; files of at most 20 MB"):
        save_upload(corpus, "big.pdf", b"%PDF-1.4\n" + bytes(30_000_000), LIMITS)
    assert not (corpus / "uploads").exists()
    with pytest.raises(UploadRefused, match="30.0 MB"):
        LIMITS.check_size("big.pdf", 30_000_000)  # before downloading
    LIMITS.check_count(5)
    with pytest.raises(UploadRefused, match="6 files at once; add at most 5"):
        LIMITS.check_count(6)


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def test_zip_bombs_are_refused(corpus):
    base = {"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w:document/>"}
    packed = _zip({**base, "word/media/padding.xml": bytes(20_000_000)})  # 20 MB of zeros in ~20 KB
    assert len(packed) < 100_000
    with pytest.raises(UploadRefused, match="zip bomb"):
        save_upload(corpus, "report.docx", packed, LIMITS)
    # Over the total a document may unpack to (10x the size limit), whatever the ratio.
    with pytest.raises(UploadRefused, match="zip bomb"):
        save_upload(corpus, "report.docx", packed, UploadLimits(max_bytes=1_000_000, max_files=5, max_member_ratio=10**9))
    many = _zip({**base, **{f"word/p{i}.xml": b"x" for i in range(60)}})
    with pytest.raises(UploadRefused, match="62 zipped parts"):
        save_upload(corpus, "report.docx", many, UploadLimits(max_bytes=1_000_000, max_files=5, max_zip_members=50))
    assert not (corpus / "uploads").exists()


@pytest.mark.parametrize("data, program", [
    (b"MZ\x90\x00\x03" + bytes(200), "Windows program"),
    (b"\x7fELF\x02\x01\x01" + bytes(200), "Linux program"),
    (b"\xcf\xfa\xed\xfe" + bytes(200), "macOS program"),
    (b"#!/bin/sh\nrm -rf ~\n", "script"),
])
def test_programs_are_refused_whatever_they_are_named(corpus, data, program):
    with pytest.raises(UploadRefused, match=f"is a {program}, not a document"):
        save_upload(corpus, "invoice.pdf", data, LIMITS)


@pytest.mark.parametrize("name, data, content", [
    ("notes.pdf", b"Just some plain notes.\n", "text"),
    ("slides.docx", PDF, "a PDF"),
    ("notes.txt", make_docx([(0, "Hello.")]), "a Word document"),
    ("data.txt", b"\x00\x01\x02\xff" * 10, "not a document"),
    ("archive.epub", _zip({"a.txt": b"hello"}), "not a document"),
])
def test_the_extension_must_agree_with_the_content(corpus, name, data, content):
    with pytest.raises(UploadRefused, match=f"its content is {content}"):
        save_upload(corpus, name, data, LIMITS)


@pytest.mark.parametrize("name, reason", [
    ("../../etc/passwd", "is a path"),
    ("/abs/x.txt", "is a path"),
    ("..\\..\\boot.ini", "is a path"),
    ("a／b.txt", "is a path"),  # a fullwidth solidus, a slash once normalised
    (".hidden", "hidden file"),
    ("..", "no name"),
    ("bad\x00name.txt", "control or invisible"),
    ("line\nbreak.txt", "control or invisible"),
    ("invoice\u202etxt.exe", "control or invisible"),  # a right-to-left override hides the real extension
    ("program.exe", "not a supported type"),
])
def test_unsafe_file_names_are_refused_with_the_reason(corpus, name, reason):
    with pytest.raises(UploadRefused, match=reason) as refused:
        save_upload(corpus, name, b"Plain text.\n", LIMITS)
    assert str(corpus) not in str(refused.value) and "\n" not in str(refused.value)
    assert sorted(p.name for p in corpus.rglob("*")) == ["handbook.txt"]


@hypothesis_settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=300))
def test_any_name_accepted_is_a_plain_visible_name_of_bounded_length(name):
    try:
        safe = safe_name(name)
    except UploadRefused:
        return
    assert Path(safe).name == safe and not safe.startswith(".") and safe not in ("", "..")
    assert "/" not in safe and "\\" not in safe and safe.isprintable()
    assert len(safe) <= MAX_NAME_CHARS and len(safe.encode()) <= MAX_NAME_BYTES


def test_long_names_keep_their_extension(corpus):
    saved = save_upload(corpus, "a" * 300 + ".txt", b"Plain text.\n", LIMITS)
    assert saved.name.endswith(".txt") and len(saved.name) == MAX_NAME_CHARS


def test_a_long_name_uploaded_again_and_again_stays_short_enough_for_autocomplete(corpus):
    # Discord offers no autocomplete choice over 100 characters: a longer source could never be picked.
    name = "q" * 86 + ".txt"  # 90 characters
    sources = [f"{UPLOADS_DIR}/{save_upload(corpus, name, f'Version {n}.'.encode(), LIMITS).name}" for n in range(12)]
    assert len(set(sources)) == 12 and all(source.endswith(".txt") for source in sources)
    assert max(len(source) for source in sources) == AUTOCOMPLETE_MAX  # "-10", "-11", "-12": the stem gave way
    assert sources[11].endswith("-12.txt")


def test_a_name_of_wide_characters_is_shortened_to_what_the_file_system_stores(corpus):
    saved = save_upload(corpus, "🐝" * 80 + ".txt", b"Bees.\n", LIMITS)  # 80 characters, 324 bytes
    assert saved.name.endswith(".txt") and len(saved.name.encode()) <= MAX_NAME_BYTES
    assert saved.read_bytes() == b"Bees.\n"


def test_a_full_disk_refuses_the_upload_in_one_line_and_leaves_nothing(corpus, monkeypatch):
    import errno
    import os

    def full(descriptor):  # fsync is where a full disk (delayed allocation, quotas) reports it
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(UploadRefused) as refused:
        save_upload(corpus, "notes.txt", b"Notes.\n", LIMITS)
    assert str(refused.value).startswith("the disk is full at uploads/") and "\n" not in str(refused.value)
    assert str(corpus) not in str(refused.value)
    assert [p.name for p in (corpus / "uploads").iterdir()] == []  # no draft, no half a file


def test_the_same_bytes_twice_are_refused_naming_the_copy_and_a_name_taken_gets_a_suffix(corpus):
    with pytest.raises(UploadRefused, match="already in the shelf as 'handbook.txt'"):
        save_upload(corpus, "copy.txt", b"The office opens at nine.\n", LIMITS)
    first = save_upload(corpus, "notes.txt", b"First notes.\n", LIMITS)
    with pytest.raises(UploadRefused, match="already in the shelf as 'uploads/notes.txt'"):
        save_upload(corpus, "notes.txt", b"First notes.\n", LIMITS)
    second = save_upload(corpus, "notes.txt", b"Other notes.\n", LIMITS)
    assert (first.name, second.name) == ("notes.txt", "notes-2.txt")
    assert first.read_bytes() == b"First notes.\n"  # never overwritten
    (corpus / "uploads" / ".upload-draft.part").write_bytes(b"Draft notes.\n")  # another upload, half done
    assert save_upload(corpus, "draft.txt", b"Draft notes.\n", LIMITS).name == "draft.txt"


def test_the_same_file_uploaded_at_the_same_instant_is_added_once(corpus):
    import threading

    start = threading.Barrier(8)
    saved, refused = [], []

    def upload(number: int) -> None:
        start.wait()
        try:
            saved.append(save_upload(corpus, f"minutes-{number}.txt", b"Minutes of the meeting.\n", LIMITS))
        except UploadRefused as error:
            refused.append(str(error))

    threads = [threading.Thread(target=upload, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(saved) == 1 and len(refused) == 7
    assert sorted(p.name for p in (corpus / "uploads").iterdir() if not p.name.startswith(".")) == [saved[0].name]


def test_limits_come_from_settings(tmp_path):
    limits = UploadLimits.from_settings(make_settings(tmp_path, upload_max_mb=2.5, upload_max_files=3))
    assert (limits.max_bytes, limits.max_files, limits.unzipped_bytes) == (2_500_000, 3, 25_000_000)


def test_an_infinite_upload_limit_is_a_setting_error_of_uploads_only(tmp_path):
    settings = make_settings(tmp_path, upload_max_mb=float("inf"))  # loads: `verbatim ask` must not fail over it
    with pytest.raises(InvalidSetting, match=r"^setting upload_max_mb \(VERBATIM_UPLOAD_MAX_MB\) is inf: give a"):
        UploadLimits.from_settings(settings)


def test_the_ledger_lists_who_did_what_newest_first(tmp_path):
    ledger = Ledger(tmp_path / "shelf" / "ledger.sqlite")
    ledger.record(7, "moderator", ADDED, "uploads/leave.pdf", "ab" * 32)
    ledger.record(8, "admin", REMOVED, "uploads/leave.pdf", "ab" * 32)
    ledger.close()
    entries = Ledger(tmp_path / "shelf" / "ledger.sqlite").entries()
    assert [(e.actor_name, e.action) for e in entries] == [("admin", REMOVED), ("moderator", ADDED)]
    assert entries[0].when.endswith("+00:00") and entries[0].source == "uploads/leave.pdf"
    assert len(Ledger(tmp_path / "shelf" / "ledger.sqlite").entries(limit=1)) == 1


@hypothesis_settings(max_examples=200, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True) | st.integers(min_value=-10**30, max_value=10**30))
def test_any_upload_limit_is_bytes_or_a_setting_error_never_a_crash(megabytes):
    settings = make_settings(Path("/nonexistent")).model_copy(update={"upload_max_mb": megabytes})
    try:
        limits = UploadLimits.from_settings(settings)
    except InvalidSetting as error:
        assert str(error).startswith("setting upload_max_mb (VERBATIM_UPLOAD_MAX_MB) is ") and "\n" not in str(error)
        return
    assert isinstance(limits.max_bytes, int) and limits.max_bytes >= 0 and megabytes > 0
