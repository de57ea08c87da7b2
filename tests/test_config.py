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
