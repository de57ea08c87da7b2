import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from bot.answering.answer import Answerer
from bot.cli.main import main
from index.build import build_index
from index.embedding.embed import OnnxEmbedder, load_embedder
from index.errors import ModelUnavailable
from index.storage import store
from tests.conftest import ROOT


def test_the_default_index_carries_an_int8_onnx_export(seed_settings):
    build_index(seed_settings)
    manifest = store.Manifest.read(store.current_generation(seed_settings.index_dir))
    assert manifest.engine == "onnx-int8" and "model.onnx" in manifest.checksums


def test_the_fp32_onnx_export_embeds_like_sentence_transformers(seed_settings):
    seed_settings = seed_settings.model_copy(update={"onnx_int8": False})
    build_index(seed_settings)
    generation = store.current_generation(seed_settings.index_dir)
    assert store.Manifest.read(generation).engine == "onnx"
    texts = ["How many troops would Pakistan send to Gaza?", "A much longer sentence " * 20]
    exported = OnnxEmbedder(generation).embed(texts)
    reference = load_embedder(seed_settings.model).embed(texts)
    assert np.min(np.sum(exported * reference, axis=1)) > 0.9999


def test_answering_imports_neither_torch_nor_transformers(seed_settings):
    build_index(seed_settings)
    program = (
        "import sys, json; from bot.cli.main import main; "
        f"code = main(['ask', 'How many troops would Pakistan send to Gaza?', '--json', "
        f"'--corpus', {str(seed_settings.corpus_dir)!r}, '--index', {str(seed_settings.index_dir)!r}]); "
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'sentence_transformers')); "
        "print(json.dumps({'code': code, 'heavy': heavy}), file=sys.stderr)"
    )
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, cwd=ROOT, timeout=120)
    report = json.loads(result.stderr.strip().splitlines()[-1])
    assert report == {"code": 0, "heavy": []}
    assert "3,500 troops" in json.loads(result.stdout)["quotes"][0]["text"]


def test_an_index_without_the_export_still_answers_and_says_how_to_get_the_fast_path(seed_settings, capsys):
    slow = seed_settings.model_copy(update={"embedding_engine": "sentence-transformers"})
    build_index(slow)
    assert store.Manifest.read(store.current_generation(slow.index_dir)).engine == "sentence-transformers"
    answerer = Answerer(seed_settings)
    assert answerer.engine.name == "sentence-transformers"
    assert "3,500 troops" in answerer.answer("How many troops would Pakistan send to Gaza?").quotes[0].text
    args = ["--corpus", str(seed_settings.corpus_dir), "--index", str(seed_settings.index_dir)]
    assert main(["ask", "How many troops would Pakistan send to Gaza?", *args]) == 0
    assert "no ONNX export" in capsys.readouterr().err
    assert not build_index(seed_settings).up_to_date  # auto mode adds the export


@pytest.mark.parametrize("name", ["model.onnx", "tokenizer.json", "embedder.json"])
def test_a_damaged_onnx_export_is_a_model_error_not_a_crash(seed_settings, tmp_path, name):
    build_index(seed_settings)
    export = tmp_path / "export"
    shutil.copytree(store.current_generation(seed_settings.index_dir), export)  # copies: the originals stay whole
    (export / name).write_bytes(b"\x00 not what it should be")
    with pytest.raises(ModelUnavailable, match="cannot load the ONNX model.*verbatim index build --full"):
        OnnxEmbedder(export)
    (export / name).unlink()
    with pytest.raises(ModelUnavailable):
        OnnxEmbedder(export)


def test_a_damaged_cached_export_is_made_again_with_a_warning(tmp_path, capsys):
    from index.embedding.engine import _cached_export  # where the build keeps its export
    from tests.conftest import make_settings, settings_with_own_cache, write_corpus

    write_corpus(tmp_path, {"owls.txt": "Owls hunt at night."})
    build_index(make_settings(tmp_path))  # the session's export exists
    settings = settings_with_own_cache(tmp_path)
    build_index(settings)
    export = _cached_export(settings)
    (export / "model.onnx").unlink()  # the live generation keeps its own link to the good file
    (export / "model.onnx").write_bytes(b"garbage")
    write_corpus(tmp_path, {"bats.txt": "Bats hunt at dusk."})
    assert build_index(settings).documents == 2
    assert "cached ONNX export" in capsys.readouterr().err
    assert Answerer(settings).answer("When do bats hunt?").quotes[0].text == "Bats hunt at dusk."


def test_an_export_quantized_per_channel_keeps_closer_to_the_model(seed_settings, tmp_path):
    from index.embedding.embed import CONFIG_FILE
    from index.embedding.onnx_export import export

    build_index(seed_settings)  # the default export: int8, one scale per weight matrix
    per_matrix = OnnxEmbedder(store.current_generation(seed_settings.index_dir))
    reference = load_embedder(seed_settings.model)
    export(reference._model, tmp_path / "per-channel", quantize=True, per_channel=True)
    assert json.loads((tmp_path / "per-channel" / CONFIG_FILE).read_text())["per_channel"] is True
    texts = ["How many troops would Pakistan send to Gaza?", "Owls hunt at night, and bats at dusk. " * 8]
    wanted = reference.embed(texts)
    closeness = lambda embedder: np.sum(embedder.embed(texts) * wanted, axis=1)  # noqa: E731
    assert np.all(closeness(OnnxEmbedder(tmp_path / "per-channel")) > closeness(per_matrix))


def test_an_export_quantized_another_way_never_shares_cached_vectors(seed_settings, monkeypatch):
    from index.embedding import engine

    shipped = engine.engine_key(seed_settings, "onnx-int8")
    monkeypatch.setattr(engine, "PER_CHANNEL", True)
    assert engine.engine_key(seed_settings, "onnx-int8") != shipped
