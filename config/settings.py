"""Settings read from `config/defaults.toml`, then `.env`, then `VERBATIM_*` variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULTS_FILE = Path(__file__).with_name("defaults.toml")
BUNDLED_MODEL = "all-MiniLM-L6-v2"


class Settings(BaseSettings):
    """Everything Verbatim can be configured with; see config/defaults.toml."""

    model_config = SettingsConfigDict(
        env_prefix="VERBATIM_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        toml_file=DEFAULTS_FILE,
        frozen=True,
    )

    corpus_dir: Path = Path("seeds")
    index_dir: Path = Path("var/index")
    cache_dir: Path | None = None
    model: str = BUNDLED_MODEL
    embed_batch_chars: int = Field(2000, ge=1)
    embedding_engine: Literal["auto", "onnx", "sentence-transformers"] = "auto"
    onnx_int8: bool = True
    passage_max_chars: int = Field(1000, ge=50)
    passage_min_chars: int = Field(120, ge=0)
    top_quotes: int = Field(3, ge=1, le=10)
    quote_max_chars: int = Field(380, ge=0)
    candidate_passages: int = Field(10, ge=1)
    min_confidence: float = 1.51
    max_file_mb: float = Field(20, gt=0)
    faiss_exact_max: int = Field(200_000, ge=0)
    faiss_nlist: int = Field(0, ge=0)
    faiss_nprobe: int = Field(32, ge=1)
    max_question_chars: int = Field(500, ge=10)
    watch_debounce_ms: int = Field(1600, ge=50)
    discord_token: SecretStr | None = None
    discord_guild_ids: list[int] = Field(default_factory=list)
    discord_owner_ids: list[int] = Field(default_factory=list)
    discord_mentions: bool = True
    discord_mention_threads: bool = True
    discord_message_content: bool = False
    discord_cooldown_rate: int = Field(3, ge=1)
    discord_cooldown_seconds: float = Field(30, gt=0)
    feedback_db: Path = Path("var/feedback.sqlite")
    web_max_pages: int = Field(200, ge=1)
    web_timeout_seconds: float = Field(10, gt=0)
    web_delay_seconds: float = Field(1.0, ge=0)
    # Where corpus files can be opened in a browser (bot/locate.py); unset: no file links.
    link_base: str | None = None

    @property
    def cache_path(self) -> Path:
        """Where reusable build products (the ONNX export) live."""
        return self.cache_dir or self.index_dir / "cache"

    @field_validator("discord_token", "link_base", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Earlier sources win: explicit arguments, then the environment, then
        # .env, and the documented defaults file last.
        return (
            init_settings,
            env_settings,
            dotenv_settings,
            TomlConfigSettingsSource(settings_cls),
        )


def load_settings(**overrides: object) -> Settings:
    """Settings with the given fields overridden (None values are ignored)."""
    return Settings(**{key: value for key, value in overrides.items() if value is not None})
