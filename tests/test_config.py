from pathlib import Path

from config import load_settings


def test_defaults_come_from_the_defaults_file():
    settings = load_settings()
    assert settings.corpus_dir == Path("seeds") and settings.model == "all-MiniLM-L6-v2"
    assert settings.discord_token is None


def test_environment_and_dotenv_override_defaults_and_arguments_override_both(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("VERBATIM_TOP_QUOTES=5\nVERBATIM_DISCORD_TOKEN=sekrit\n")
    monkeypatch.setenv("VERBATIM_CORPUS_DIR", "docs")
    settings = load_settings()
    assert settings.top_quotes == 5 and settings.corpus_dir == Path("docs")
    assert "sekrit" not in repr(settings) and settings.discord_token.get_secret_value() == "sekrit"
    assert load_settings(corpus_dir=Path("other"), index_dir=None).corpus_dir == Path("other")


def test_a_leading_tilde_in_path_settings_is_the_home_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / ".env").write_text("VERBATIM_CORPUS_DIR=~/handbook\nVERBATIM_FEEDBACK_DB=~/votes.sqlite\n")
    monkeypatch.setenv("VERBATIM_CACHE_DIR", "~/cache")
    settings = load_settings(index_dir=Path("~/index"))
    assert settings.corpus_dir == tmp_path / "home" / "handbook"
    assert settings.cache_dir == tmp_path / "home" / "cache" and settings.index_dir == tmp_path / "home" / "index"
    assert settings.feedback_db == tmp_path / "home" / "votes.sqlite"


def test_each_corpus_has_its_own_default_index_and_all_share_one_cache(tmp_path, monkeypatch):
    (tmp_path / "handbook").mkdir()
    seeds, handbook = load_settings(), load_settings(corpus_dir=Path("handbook"))
    assert seeds.index_dir != handbook.index_dir
    assert seeds.index_dir.parent == handbook.index_dir.parent == tmp_path / "data" / "index"
    assert handbook.index_dir.name.startswith("handbook-")
    assert seeds.cache_dir == handbook.cache_dir == tmp_path / "data" / "cache"
    # The same corpus named another way (absolute, or from its parent) keeps its index...
    assert load_settings(corpus_dir=tmp_path / "handbook").index_dir == handbook.index_dir
    # ...and a corpus of the same name elsewhere gets another one.
    (tmp_path / "other").mkdir()
    monkeypatch.chdir(tmp_path / "other")
    assert load_settings(corpus_dir=Path("handbook")).index_dir != handbook.index_dir
    # An explicit index_dir (argument, environment, .env) wins.
    monkeypatch.setenv("VERBATIM_INDEX_DIR", "/srv/index")
    assert load_settings(corpus_dir=Path("handbook")).index_dir == Path("/srv/index")


def test_the_embedding_cache_lives_in_the_cache_dir_unless_named(tmp_path):
    assert load_settings(cache_dir=tmp_path).embedding_cache_path == tmp_path / "embeddings.sqlite"
    assert load_settings(embedding_cache=tmp_path / "e.sqlite").embedding_cache_path == tmp_path / "e.sqlite"
