"""Settings read from `config/defaults.toml`, then `.env`, then `VERBATIM_*` variables.

Relative paths are taken from the working directory; `~` is expanded.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)
from pydantic_settings.exceptions import SettingsError

from index.errors import VerbatimError

DEFAULTS_FILE = Path(__file__).with_name("defaults.toml")
# Optional settings of one deployment, read from the working directory; its keys replace the defaults'.
LOCAL_FILE = Path("verbatim.toml")
BUNDLED_MODEL = "all-MiniLM-L6-v2"
# Without an explicit index_dir, each corpus gets its own index under here, so
# indexing another corpus never replaces the seeds' index (or the reverse).
INDEX_ROOT = Path("var/index")
PATH_SETTINGS = ("corpus_dir", "index_dir", "cache_dir", "embedding_cache", "feedback_db")


class InvalidSetting(VerbatimError):
    """A setting from the environment, .env or defaults.toml does not validate."""


SHELF_NAME = r"^[a-z0-9][a-z0-9_-]{0,39}$"


class ShelfSettings(BaseModel):
    """One shelf: a corpus, its index and feedback, and who may read it in Discord (`[shelves.NAME]`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    corpus_dir: Path
    # Unset: the corpus's own index, as for corpus_dir (default_index_dir).
    index_dir: Path | None = None
    # Unset: feedback-<name>.sqlite beside the feedback_db setting.
    feedback_db: Path | None = None
    # Servers whose members may read it; none: the shelf is for the command line only.
    guild_ids: list[int] = Field(default_factory=list)
    # Only these channels (and their threads) of those servers; none: the whole server.
    channel_ids: list[int] = Field(default_factory=list)
    # Only members with one of these roles; none: every member.
    role_ids: list[int] = Field(default_factory=list)
    # Members with one of these roles may /add and /remove documents, besides Manage Server.
    uploader_role_ids: list[int] = Field(default_factory=list)

    @field_validator("corpus_dir", "index_dir", "feedback_db", mode="after")
    @classmethod
    def _expand_home(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @model_validator(mode="after")
    def _channels_belong_to_servers(self) -> ShelfSettings:
        if (self.channel_ids or self.role_ids) and not self.guild_ids:
            raise ValueError("channel_ids and role_ids restrict a shelf within its servers: set guild_ids too")
        return self


class Settings(BaseSettings):
    """Everything Verbatim can be configured with; see config/defaults.toml."""

    model_config = SettingsConfigDict(
        env_prefix="VERBATIM_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        toml_file=[DEFAULTS_FILE, LOCAL_FILE],
        frozen=True,
    )

    corpus_dir: Path = Path("seeds")
    # Unset: INDEX_ROOT/<corpus name>-<hash of the corpus's absolute path> (see default_index_dir).
    index_dir: Path
    cache_dir: Path = Path("var/cache")
    # Unset: <cache_dir>/embeddings.sqlite. `eval` points it at a throwaway file.
    embedding_cache: Path | None = None
    model: str = BUNDLED_MODEL
    embed_batch_chars: int = Field(2000, ge=1)
    embedding_engine: Literal["auto", "onnx", "sentence-transformers"] = "auto"
    onnx_int8: bool = True
    passage_max_chars: int = Field(1000, ge=50)
    passage_min_chars: int = Field(120, ge=0)
    top_quotes: int = Field(3, ge=1, le=10)
    quote_max_chars: int = Field(380, ge=0)
    quote_neighbour_margin: float = Field(3.0, ge=0)
    candidate_passages: int = Field(10, ge=1)
    min_confidence: float = 1.51
    ranker: bool = True
    ranker_min_probability: float = Field(0.5, ge=0, le=1)
    selector: bool = True
    selector_min_probability: float = Field(0.5, ge=0, le=1)
    selector_candidates: int = Field(3, ge=1, le=100)
    reader: bool = False
    reader_min_probability: float = Field(0.5, ge=0, le=1)
    reader_sentences: int = Field(1, ge=1, le=10)
    # Below its stage's min probability but at least this: the closest quote is shown as "not sure";
    # None: no such band (a plain refusal).
    ranker_not_sure_probability: float | None = Field(None, ge=0, le=1)
    selector_not_sure_probability: float | None = Field(None, ge=0, le=1)
    reader_not_sure_probability: float | None = Field(None, ge=0, le=1)
    max_file_mb: float = Field(20, gt=0)
    faiss_exact_max: int = Field(200_000, ge=0)
    faiss_nlist: int = Field(0, ge=0)
    faiss_nprobe: int = Field(32, ge=1)
    # Which passage index: "auto" chooses by size (flat, ivf past faiss_exact_max, ivfpq past
    # ann_threshold_passages); the others force one (index/ann.py).
    index_type: Literal["auto", "flat", "ivf", "ivfpq"] = "auto"
    ann_threshold_passages: int = Field(1_000_000, ge=1)
    ann_pq_m: int = Field(48, ge=1)
    ann_rescore_factor: int = Field(50, ge=0)
    ann_sentence_pq_m: int = Field(192, ge=1)
    # "" builds in this process; "auto" starts a local Ray instance on every core; else a Ray address.
    build_cluster: str = ""
    max_question_chars: int = Field(500, ge=10)
    watch_debounce_ms: int = Field(1600, ge=50)
    discord_token: SecretStr | None = None
    discord_guild_ids: list[int] = Field(default_factory=list)
    discord_allowed_guild_ids: list[int] = Field(default_factory=list)
    discord_allow_dms: bool = False
    discord_owner_ids: list[int] = Field(default_factory=list)
    discord_mentions: bool = True
    discord_mention_threads: bool = True
    discord_message_content: bool = False
    discord_cooldown_rate: int = Field(3, ge=1)
    discord_cooldown_seconds: float = Field(30, gt=0)
    feedback_db: Path = Path("var/feedback.sqlite")
    feedback_retention_days: float = Field(90, gt=0)
    web_max_pages: int = Field(200, ge=1)
    web_timeout_seconds: float = Field(10, gt=0)
    web_delay_seconds: float = Field(1.0, ge=0)
    upload_max_mb: float = Field(20, gt=0)
    upload_max_files: int = Field(5, ge=1)
    followup_min_terms: int = Field(2, ge=0)
    followup_source_boost: float = Field(0.15, ge=0)
    followup_threads: int = Field(1000, ge=1)
    # Where corpus files can be opened in a browser (bot/locate.py); unset: no file links.
    link_base: str | None = None
    # Named shelves (bot/shelves.py); none: one shelf, "default", of corpus_dir and index_dir.
    shelves: dict[str, ShelfSettings] = Field(default_factory=dict)
    # `verbatim doctor` fails when the index's or cache's disk has less free than this (MB).
    doctor_min_free_mb: float = Field(1024, ge=0)
    # How many refused questions, down-voted quotes and documents `feedback report` and /report list.
    feedback_report_top: int = Field(10, ge=1, le=25)

    @property
    def cache_path(self) -> Path:
        """Where reusable build products (the ONNX export) live; shared by every corpus."""
        return self.cache_dir

    @property
    def embedding_cache_path(self) -> Path:
        """The SQLite file of cached embeddings."""
        return self.embedding_cache or self.cache_dir / "embeddings.sqlite"

    @model_validator(mode="before")
    @classmethod
    def _index_belongs_to_its_corpus(cls, values: object) -> object:
        if isinstance(values, dict) and values.get("index_dir") in (None, ""):
            corpus = values.get("corpus_dir") or cls.model_fields["corpus_dir"].default
            values = {**values, "index_dir": default_index_dir(Path(corpus))}
        return values

    @field_validator("shelves", mode="after")
    @classmethod
    def _shelves_are_named_and_reachable(cls, shelves: dict[str, ShelfSettings]) -> dict[str, ShelfSettings]:
        readers = {}
        for name, shelf in shelves.items():
            if not re.fullmatch(SHELF_NAME, name):
                raise ValueError(f"shelf name {name!r} must be 1-40 of a-z, 0-9, _ and -, starting with a letter or digit")
            audience = (frozenset(shelf.guild_ids), frozenset(shelf.channel_ids), frozenset(shelf.role_ids))
            if shelf.guild_ids and audience in readers:
                raise ValueError(f"shelves {readers[audience]} and {name} have the same readers, so {name} would never be used")
            readers[audience] = name
        return shelves

    @field_validator(*PATH_SETTINGS, mode="after")
    @classmethod
    def _expand_home(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

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
    """Settings with the given fields overridden (None values are ignored); InvalidSetting if one doesn't validate."""
    try:
        return Settings(**{key: value for key, value in overrides.items() if value is not None})
    except ValidationError as error:
        raise InvalidSetting(describe_invalid(error)) from None
    except SettingsError as error:
        # pydantic-settings could not even parse the value (e.g. a list that isn't JSON).
        raise InvalidSetting(_describe_unparsable(error)) from None
    except tomllib.TOMLDecodeError as error:
        raise InvalidSetting(f"cannot read {LOCAL_FILE} (or {DEFAULTS_FILE.name}): {error}") from None


def default_index_dir(corpus_dir: Path) -> Path:
    """The index location owned by a corpus: its name plus a hash of its absolute path."""
    resolved = corpus_dir.expanduser().resolve()
    digest = hashlib.sha256(str(resolved).encode("utf-8", "surrogateescape")).hexdigest()[:10]
    name = re.sub(r"[^\w.-]+", "_", resolved.name).strip("._") or "corpus"
    return INDEX_ROOT / f"{name}-{digest}"


def describe_invalid(error: ValidationError) -> str:
    """One line naming each bad setting, its variable, the value given and what it expects."""
    problems = []
    for problem in error.errors():
        name = str(problem["loc"][0]) if problem["loc"] else "settings"
        # Inside a shelf, the whole path: shelves.NAME.guild_ids.0
        where = ".".join(str(part) for part in problem["loc"]) if name == "shelves" else name
        message = problem["msg"].removeprefix("Value error, ")
        expects = message[0].lower() + message[1:]
        if name in Settings.model_fields and "list" in str(Settings.model_fields[name].annotation):
            expects += " (a JSON list, e.g. [123456789012345678])"
        given = "(hidden)" if name == "discord_token" else repr(problem["input"])
        problems.append(f"setting {where} (VERBATIM_{name.upper()}) is {given}: {expects}")
    return "; ".join(problems)


def _describe_unparsable(error: SettingsError) -> str:
    found = re.search(r'field "(\w+)"', str(error))
    if not found:
        return f"cannot read the settings: {error}"
    name = found.group(1)
    return f"setting {name} (VERBATIM_{name.upper()}) cannot be parsed: expected a JSON list, e.g. [123456789012345678]"
