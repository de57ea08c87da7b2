import json

from bot.cli.main import EXIT_OK, main
from tests.conftest import SHARED_CACHE, write_corpus


def test_build_summarises_skips_by_reason_and_verbose_names_each(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VERBATIM_CACHE_DIR", str(SHARED_CACHE))  # the ONNX export, made once per session
    files = {"guide.txt": "The office opens at nine o'clock every weekday morning.", "bad.txt": b"ab\x00cd"}
    files.update({f"blob{i:02}.bin": b"\x00" for i in range(12)})
    corpus = write_corpus(tmp_path, files)
    paths = ["--corpus", str(corpus), "--index", str(tmp_path / "index")]
    assert main(["index", "build", *paths]) == EXIT_OK
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["verbatim: skipped 13 files (--verbose names each): "
                   "12 unsupported type (blob00.bin, blob01.bin, blob02.bin, …); 1 binary (bad.txt)"]
    assert main(["index", "build", "--verbose", "--json", *paths]) == EXIT_OK
    captured = capsys.readouterr()
    assert "verbatim: skipped bad.txt: binary (contains NUL bytes)" in captured.err.splitlines()
    assert len(captured.err.splitlines()) == 13
    skipped = json.loads(captured.out)["skipped"]
    assert {"source": "bad.txt", "reason": "binary", "detail": "contains NUL bytes", "kept": False} in skipped
