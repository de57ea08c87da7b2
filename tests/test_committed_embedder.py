"""The distilled embedder ships as a committed, checksummed ONNX export; an index follows its model by checksum."""

import json
import shutil

import pytest

from bot.answering.answer import Answerer
from bot.cli.doctor import FAIL, OK, embedder_check
from index.build import build_index
from index.checksums import recorded_checksums, write_checksums
from index.embedding import embed
from index.embedding.embed import COMMITTED_MODELS, DISTILLED_MODEL, FILES
from index.errors import ModelUnavailable
from index.storage import store


@pytest.fixture
def distilled(seed_settings):
    return seed_settings.model_copy(update={"model": DISTILLED_MODEL})


@pytest.fixture
def own_copy(tmp_path, monkeypatch):
    """A copy of the committed model that a test may change, in the committed model's place."""
    copy = tmp_path / DISTILLED_MODEL
    shutil.copytree(COMMITTED_MODELS[DISTILLED_MODEL], copy)
    monkeypatch.setitem(COMMITTED_MODELS, DISTILLED_MODEL, copy)
    return copy


def test_the_distilled_embedder_builds_and_answers_from_its_committed_files(distilled):
    result = build_index(distilled)
    manifest = store.Manifest.read(store.current_generation(distilled.index_dir))
    sums = recorded_checksums(COMMITTED_MODELS[DISTILLED_MODEL])
    assert manifest.engine == "onnx-int8" and manifest.checksums["model.onnx"] == sums["model.onnx"]
    assert manifest.model == DISTILLED_MODEL and len(manifest.model_sha256) == 64
    assert result.documents == 1 and build_index(distilled).up_to_date
    quote = Answerer(distilled).answer("How many troops would Pakistan send to Gaza?").quotes[0]
    assert "3,500 troops" in quote.text
    assert embedder_check(distilled).mark == OK


@pytest.mark.parametrize("name", FILES)
def test_a_committed_embedder_whose_files_do_not_match_their_checksums_is_refused(distilled, own_copy, name):
    path = own_copy / name
    path.write_bytes(path.read_bytes()[:-1] + b" ")
    with pytest.raises(ModelUnavailable, match=f"{name} does not match its checksum; reinstall Verbatim"):
        build_index(distilled)
    assert not (distilled.index_dir / store.CURRENT).exists()
    assert embedder_check(distilled).mark == FAIL


def test_an_index_is_embedded_again_in_full_when_its_models_files_change_under_the_same_name(distilled, own_copy):
    build_index(distilled)
    config = json.loads((own_copy / embed.CONFIG_FILE).read_text())
    (own_copy / embed.CONFIG_FILE).write_text(json.dumps({**config, "max_seq_length": 64}))
    write_checksums(own_copy, FILES)
    result = build_index(distilled)
    assert result.full_reason.startswith("model's files changed: sha256 ")
    assert build_index(distilled).up_to_date


def test_the_distilled_embedder_says_it_needs_the_onnx_engine(distilled):
    with pytest.raises(ModelUnavailable, match='ONNX export only: set embedding_engine to "auto" or "onnx"'):
        build_index(distilled.model_copy(update={"embedding_engine": "sentence-transformers"}))


def test_an_index_built_with_another_model_is_embedded_again_and_says_why(seed_settings):
    build_index(seed_settings)
    result = build_index(seed_settings.model_copy(update={"model": DISTILLED_MODEL}))
    assert result.full_reason == f"model changed: {seed_settings.model} -> {DISTILLED_MODEL}"


def test_a_folder_holding_an_onnx_export_is_a_model_too(seed_settings, tmp_path):
    folder = tmp_path / "my-export"
    folder.mkdir()
    for name in FILES:  # the files an export holds, without checksums beside them
        shutil.copy(COMMITTED_MODELS[DISTILLED_MODEL] / name, folder / name)
    settings = seed_settings.model_copy(update={"model": str(folder)})
    build_index(settings)
    assert store.Manifest.read(store.current_generation(settings.index_dir)).engine == "onnx-int8"
    assert "3,500 troops" in Answerer(settings).answer("How many troops would Pakistan send to Gaza?").quotes[0].text
    assert build_index(settings).up_to_date
