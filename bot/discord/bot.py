"""`verbatim discord`: slash commands and mentions over `Answerer.answer`, one shelf per interaction.

Each interaction is mapped to exactly one shelf (bot/shelves/shelves.py) by its server, channel
and the member's roles, before any command runs; every command then reads only that
shelf's index and feedback. Answers are computed in a pool of as many threads as cores
and rebuilds run in a child process (bot/shelves/rebuild.py), so the event loop never blocks;
every reply is rendered by bot/discord/render.py within Discord's limits.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import discord
from discord import app_commands

from bot.answering.answer import Answerer, check_question
from bot.answering.followup import Conversations, Turn, answer_followup, reads_as_question
from bot.answering.locate import answer_located
from bot.discord.render import (
    FIELD_VALUE_MAX, MESSAGE_MAX, TITLE_MAX, answer_embed, clip, code_span, context_text, fit, without_paths,
)
from bot.shelves.feedback import FeedbackStore
from bot.shelves.rebuild import rebuild
from bot.shelves.removal import removable, set_aside, settle_leftovers
from bot.shelves.shelves import Shelf, configured_shelves, served_guilds, shelf_for
from bot.shelves.uploads import ADDED, REMOVED, Ledger, UploadLimits, UploadRefused, save_upload
from config import Settings
from index.errors import BuildLocked, DocumentNotIndexed, VerbatimError

log = logging.getLogger("verbatim.discord")
DOCUMENTS_PER_PAGE = 20
# Uploads and removals listed under /documents.
LEDGER_SHOWN = 5
INDEX_POLL_SECONDS = 5.0
# How often a rebuild's progress is edited into its reply.
REBUILD_POLL_SECONDS = 2.0
# What everyone sees when a public "thinking…" placeholder can't become an answer: no details, no paths.
PUBLIC_FAILURE = "Sorry, I couldn't finish this one."
# `interaction.extras` key: a public "thinking…" placeholder is showing and no reply has replaced it yet.
PLACEHOLDER = "verbatim:public-placeholder"
NOT_HERE = "I only answer in the servers I was set up for."
# Channels a thread can be opened in.
THREADABLE = (discord.ChannelType.text, discord.ChannelType.news)
AUTHOR_NAME_MAX = 256
NO_SHELF = "There are no documents for you here: no shelf is set up for this channel."
PRIVATE_SHELF = "Answers from the documents here are private: ask with /ask."
# `interaction.extras` key: the shelf this interaction reads, set by the checks before anything runs.
SHELF = "verbatim:shelf"


class MissingToken(VerbatimError):
    """No Discord token is configured."""


class NotAdmin(app_commands.CheckFailure):
    """The member may not run an admin command."""


class NotUploader(app_commands.CheckFailure):
    """The member may not add or remove documents on this shelf."""


def allowed_guilds(settings: Settings) -> frozenset[int] | None:
    """The servers the bot serves: `discord_allowed_guild_ids`, else `discord_guild_ids` and every shelf's
    servers; None means every server."""
    if settings.discord_allowed_guild_ids:
        return frozenset(settings.discord_allowed_guild_ids)
    chosen = frozenset(settings.discord_guild_ids) | served_guilds(settings)
    return chosen or None


def places(channel: object) -> set[int]:
    """The channel's id and, for a thread, its parent's: a shelf for a channel covers its threads."""
    if channel is None:
        return set()
    parent = getattr(channel, "parent_id", None) if isinstance(channel, discord.Thread) else None
    return {channel.id} | ({parent} if parent else set())


def role_ids(member: object) -> frozenset[int]:
    """The member's role ids as Discord sent them.

    `Member.roles` resolves ids through the cached server, which may not hold them (an uncached
    or unavailable server): the ids in the payload are what a shelf's role_ids name.
    """
    return frozenset(getattr(member, "_roles", ()))


@dataclass(eq=False)
class OpenShelf:
    """A shelf with its feedback store, and its Answerer once opened (lazily, once, shared by every interaction)."""

    shelf: Shelf
    feedback: FeedbackStore
    ledger: Ledger
    answerer: Answerer | None = None
    opening: asyncio.Lock = field(default_factory=asyncio.Lock)
    building: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def opened(self) -> Answerer:
        """The shelf's Answerer, opened off the event loop the first time it is needed."""
        if self.answerer is None:
            async with self.opening:
                if self.answerer is None:
                    self.answerer = await asyncio.to_thread(Answerer, self.shelf.settings)
        return self.answerer


class MentionLimiter:
    """Per-user cooldown for mentions, forgetting users whose window has passed (bounded by recent askers)."""

    def __init__(self, rate: int, per: float) -> None:
        self.rate, self.per = rate, per
        self._buckets: dict[int, app_commands.Cooldown] = {}
        self._warned: set[int] = set()
        self._next_prune = 0.0

    def retry_after(self, user_id: int, now: float | None = None) -> float:
        """Seconds until `user_id` may ask again (0: ask now, which uses up one question)."""
        now = time.time() if now is None else now
        if now >= self._next_prune:  # once a window: the sweep costs one look at every recent asker
            self._next_prune = now + self.per
            for stale in [user for user, bucket in self._buckets.items() if bucket.get_tokens(now) == self.rate]:
                del self._buckets[stale]
                self._warned.discard(stale)
        bucket = self._buckets.setdefault(user_id, app_commands.Cooldown(self.rate, self.per))
        retry_after = bucket.update_rate_limit(now)
        if not retry_after:
            self._warned.discard(user_id)
        return retry_after or 0.0

    def warn_once(self, user_id: int) -> bool:
        """True the first time a limited user is told to slow down in a window; then stay quiet."""
        if user_id in self._warned:
            return False
        self._warned.add(user_id)
        return True

    def __len__(self) -> int:
        return len(self._buckets)


class AnswerView(discord.ui.View):
    """Buttons under an answer; persistent (fixed ids, no timeout) so they work after a restart."""

    def __init__(self, bot: VerbatimBot) -> None:
        super().__init__(timeout=None)
        self.bot = bot

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        refusal = self.bot.map_to_shelf(interaction)
        if refusal is None:
            return True
        await interaction.response.send_message(refusal, ephemeral=True)
        return False

    async def on_error(self, interaction: discord.Interaction, error: Exception, item: discord.ui.Item) -> None:
        await send_private(interaction, user_message(error, self.bot.settings, f"button {item.custom_id}"))

    @discord.ui.button(label="Show context", style=discord.ButtonStyle.secondary, custom_id="verbatim:context")
    async def show_context(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        # Only the pressing member's shelf is asked: an answer from another shelf is unknown there.
        shelf = self.bot.open_shelf(interaction)
        quotes = shelf.feedback.quotes(interaction.message.id) if interaction.message else None
        if not quotes:
            await interaction.response.send_message("I no longer have the context of this answer.", ephemeral=True)
            return
        answerer = await shelf.opened()
        texts = await asyncio.to_thread(self.bot.contexts, answerer, quotes)
        await interaction.response.send_message(texts[0], ephemeral=True)
        for text in texts[1:]:
            await interaction.followup.send(text, ephemeral=True)

    @discord.ui.button(emoji="👍", style=discord.ButtonStyle.secondary, custom_id="verbatim:up")
    async def thumbs_up(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await self._vote(interaction, +1)

    @discord.ui.button(emoji="👎", style=discord.ButtonStyle.secondary, custom_id="verbatim:down")
    async def thumbs_down(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await self._vote(interaction, -1)

    async def _vote(self, interaction: discord.Interaction, vote: int) -> None:
        feedback = self.bot.open_shelf(interaction).feedback
        # A vote counts only on an answer the pressing member's shelf gave (and still remembers).
        if interaction.message is None or feedback.quotes(interaction.message.id) is None:
            await interaction.response.send_message("I no longer have this answer, so the vote can't count.",
                                                    ephemeral=True)
            return
        await asyncio.to_thread(feedback.vote, interaction.message.id, interaction.user.id, vote)
        await interaction.response.send_message("Thanks, noted.", ephemeral=True)


class VerbatimTree(app_commands.CommandTree):
    """Serves only allowed servers; turns every command error into a private reply (tracebacks go to the log)."""

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        refusal = self.client.map_to_shelf(interaction)
        if refusal is None:
            return True
        if interaction.type is discord.InteractionType.application_command:
            await interaction.response.send_message(refusal, ephemeral=True)
        return False  # autocomplete elsewhere gets no choices

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        original = getattr(error, "original", error)
        if isinstance(error, app_commands.CommandOnCooldown):
            message = f"Slow down a little: you can ask again in {error.retry_after:.0f} s."
        elif isinstance(error, (NotAdmin, app_commands.MissingPermissions)):
            message = "Only members with the Manage Server permission (or the bot's owners) can do that."
        elif isinstance(error, NotUploader):
            message = ("Only members with the Manage Server permission, the shelf's uploader roles (or the bot's "
                       "owners) can add or remove documents.")
        elif isinstance(error, app_commands.NoPrivateMessage):
            message = "That command works in a server, not in direct messages."
        else:
            message = user_message(original, self.client.settings, f"/{getattr(interaction.command, 'name', '?')}")
        await send_private(interaction, message)


def user_message(error: BaseException, settings: Settings, where: str) -> str:
    """What a user may read about an error: ours without server paths, anything else only logged."""
    if isinstance(error, VerbatimError):
        return without_paths(str(error), settings)
    log.error("error in %s", where, exc_info=error)
    return "Something went wrong on my side; it has been logged."


async def think(interaction: discord.Interaction, private: bool = False) -> None:
    """Defer with a "thinking…" placeholder; a public one is remembered so an error can't leak through it."""
    await interaction.response.defer(thinking=True, ephemeral=private)
    interaction.extras[PLACEHOLDER] = not private


async def send_answer(interaction: discord.Interaction, **message) -> discord.WebhookMessage:
    """The reply that replaces the placeholder (and keeps its visibility)."""
    sent = await interaction.followup.send(**message, wait=True)
    interaction.extras[PLACEHOLDER] = False
    return sent


async def send_private(interaction: discord.Interaction, message: str) -> None:
    """Tell only the user, at any stage of the interaction.

    After a public defer the first follow-up is public whatever it asks (Discord's rule), so a
    waiting placeholder is first turned into a short generic line and the message follows privately.
    """
    if interaction.extras.get(PLACEHOLDER):
        interaction.extras[PLACEHOLDER] = False
        await interaction.edit_original_response(content=PUBLIC_FAILURE, embed=None, view=None)
        await interaction.followup.send(message, ephemeral=True)
    elif interaction.response.is_done():
        await interaction.followup.send(message, ephemeral=True)
    else:
        await interaction.response.send_message(message, ephemeral=True)


class VerbatimBot(discord.Client):
    """The Discord client: commands, buttons, mentions, hot reload of rebuilt indexes."""

    def __init__(self, settings: Settings, answerer: Answerer | None = None, sync_globally: bool = False) -> None:
        """`answerer`, if given, is the first shelf's, already open."""
        intents = discord.Intents.default()
        intents.message_content = settings.discord_message_content
        # No answer may ever ping anyone, whatever a document says.
        super().__init__(intents=intents, allowed_mentions=discord.AllowedMentions.none())
        self.settings = settings
        self.sync_globally = sync_globally
        self.shelves = {
            shelf.name: OpenShelf(shelf, FeedbackStore(shelf.settings.feedback_db, settings.feedback_retention_days),
                                  Ledger(ledger_path(shelf)))
            for shelf in configured_shelves(settings)
        }
        self._first = next(iter(self.shelves.values()))
        self._first.answerer = answerer
        # Answering is CPU-bound: threads beyond the cores only contend for the GIL, and the event
        # loop waits its turn behind each of them (measured by bench/discord_load.py).
        self.answer_threads = os.cpu_count() or 2
        self._answer_pool = ThreadPoolExecutor(self.answer_threads, thread_name_prefix="verbatim-answer")
        self.tree = VerbatimTree(self)
        self.mention_limiter = MentionLimiter(settings.discord_cooldown_rate, settings.discord_cooldown_seconds)
        # The last turn of each thread the bot opened and of each answer it gave: what a follow-up is read with.
        self.conversations = Conversations(settings.followup_threads)
        self._add_commands()

    async def setup_hook(self) -> None:
        # Logging starts once logged in: a start that can't reach Discord prints one line, not a log.
        discord.utils.setup_logging(level=logging.INFO)
        await self.prepare()
        self.add_view(AnswerView(self))
        for guild_id in sorted(set(self.settings.discord_guild_ids) | served_guilds(self.settings)):
            guild = discord.Object(id=guild_id)
            self.tree.copy_global_to(guild=guild)
            await self._sync(guild)
        if self.sync_globally:
            await self._sync(None)
        if allowed_guilds(self.settings) is None:
            log.warning("answering in every server the bot is invited to: set discord_allowed_guild_ids to limit it")
        self._index_watcher = asyncio.create_task(self._follow_index())

    async def prepare(self) -> None:
        """Open every shelf and start the answering threads, before the first question needs them."""
        for shelf in self.shelves.values():
            try:
                for source in await asyncio.to_thread(settle_leftovers, shelf.shelf.settings):
                    log.warning("shelf %s: put %s back, its removal was cut short", shelf.shelf.name, source)
            except (VerbatimError, OSError) as error:
                log.warning("shelf %s: removals cut short cannot be settled: %s", shelf.shelf.name, error)
            try:
                await shelf.opened()
            except VerbatimError as error:  # tried again when someone asks; the other shelves serve meanwhile
                log.warning("shelf %s cannot be opened yet: %s", shelf.shelf.name, error)
        # A thread started while others answer waits for the GIL, and the loop waits for it to start.
        started = threading.Barrier(self.answer_threads)
        await asyncio.gather(*(self.answering(started.wait) for _ in range(self.answer_threads)))

    async def answering(self, function: Callable, *arguments):
        """`function(*arguments)` in one of the answering threads."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._answer_pool, functools.partial(function, *arguments))

    @property
    def answerer(self) -> Answerer | None:
        """The first shelf's Answerer (the only shelf when none is configured), if open."""
        return self._first.answerer

    @property
    def feedback(self) -> FeedbackStore:
        """The first shelf's feedback (the only shelf when none is configured)."""
        return self._first.feedback

    def serves(self, guild_id: int | None) -> bool:
        """Whether to answer in this server (None: a direct message)."""
        if guild_id is None:
            return self.settings.discord_allow_dms
        allowed = allowed_guilds(self.settings)
        return allowed is None or guild_id in allowed

    def shelf_for(self, guild_id: int | None, channel_ids: Iterable[int], roles: Iterable[int]) -> OpenShelf | None:
        """The one shelf read in this server and channel by a member with these roles, if any."""
        if not self.serves(guild_id):
            return None
        shelf = shelf_for([open_shelf.shelf for open_shelf in self.shelves.values()], guild_id, channel_ids, roles)
        return None if shelf is None else self.shelves[shelf.name]

    def map_to_shelf(self, interaction: discord.Interaction) -> str | None:
        """Remember the interaction's shelf for the command; or the refusal to send where none is mapped."""
        if not self.serves(interaction.guild_id):
            return NOT_HERE
        shelf = self.shelf_for(interaction.guild_id, places(interaction.channel), role_ids(interaction.user))
        if shelf is None:
            return NO_SHELF
        interaction.extras[SHELF] = shelf
        return None

    def open_shelf(self, interaction: discord.Interaction) -> OpenShelf:
        """The shelf the checks mapped this interaction to (a command never runs without one)."""
        return interaction.extras[SHELF]

    async def on_ready(self) -> None:
        for guild in list(self.guilds):
            await self._leave_unless_served(guild)

    async def on_guild_join(self, guild: discord.Guild) -> None:
        await self._leave_unless_served(guild)

    async def _leave_unless_served(self, guild: discord.Guild) -> None:
        if not self.serves(guild.id):
            log.warning("leaving server %s (%d): it is not in discord_allowed_guild_ids", guild.name, guild.id)
            await guild.leave()

    async def _sync(self, guild: discord.abc.Snowflake | None) -> None:
        where = f"guild {guild.id}" if guild else "all guilds (may take up to an hour to appear)"
        try:
            commands = await self.tree.sync(guild=guild)
            log.info("synced %d commands to %s", len(commands), where)
        except discord.Forbidden:
            log.error("cannot sync commands to %s: invite the bot with the applications.commands scope", where)

    async def _follow_index(self) -> None:
        # Pick up an index rebuilt elsewhere (CLI, watch mode) before the next question needs it.
        while not self.is_closed():
            await asyncio.sleep(INDEX_POLL_SECONDS)
            await self.follow_indexes()

    async def follow_indexes(self) -> None:
        """Switch every open shelf whose index was rebuilt to its new index."""
        for shelf in self.shelves.values():
            if shelf.answerer is None:
                continue
            try:
                await asyncio.to_thread(shelf.answerer.refresh)
            except VerbatimError as error:
                log.warning("the rebuilt index of shelf %s cannot be loaded yet: %s", shelf.shelf.name, error)

    def cooldown(self, interaction: discord.Interaction) -> app_commands.Cooldown:
        return app_commands.Cooldown(self.settings.discord_cooldown_rate, self.settings.discord_cooldown_seconds)

    def is_admin(self, interaction: discord.Interaction) -> bool:
        if interaction.user.id in self.settings.discord_owner_ids:
            return True
        # Manage Server counts only inside a server (a direct message has none to manage).
        if interaction.guild_id is not None and interaction.permissions.manage_guild:
            return True
        raise NotAdmin()

    def may_change_documents(self, interaction: discord.Interaction) -> bool:
        """Admins (as for /reindex) and members holding one of the shelf's uploader roles."""
        uploaders = self.open_shelf(interaction).shelf.uploader_role_ids
        if interaction.guild_id is not None and not uploaders.isdisjoint(role_ids(interaction.user)):
            return True
        try:
            return self.is_admin(interaction)
        except NotAdmin:
            raise NotUploader() from None

    def contexts(self, answerer: Answerer, quotes) -> list[str]:
        """The surrounding passage of each quote in the shelf `answerer` reads, as messages."""
        searcher = answerer.searcher
        texts = []
        for quote in quotes:
            info = searcher.document_info(quote.source)
            text = searcher.document_text(info["id"]) if info is not None else ""
            # After an edit the old offsets point elsewhere: show context only where they still hold the quote.
            if text[quote.start : quote.end] == quote.text:
                texts.append(context_text(quote, text))
        return texts or ["Those documents have changed since this answer; ask again for current quotes."]

    async def answer_to_embed(self, answerer: Answerer, question: str, document: str | None = None):
        """The answer from `answerer`'s shelf (from one document of it, if given) and its embed."""
        if document is None:
            answer = await self.answering(answer_located, answerer, question)  # with slide, section, link
        else:
            answer = await self.answering(functools.partial(answer_located, sources=[document]), answerer, question)
        return answer_embed(answer, answerer.confident_above), answer

    def _add_commands(self) -> None:
        bot = self

        async def complete_document(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
            answerer = await bot.open_shelf(interaction).opened()
            rows = await asyncio.to_thread(answerer.searcher.list_documents, current, 0, 25)
            return [app_commands.Choice(name=s, value=s) for s, _ in rows if len(s) <= 100]

        @self.tree.command(name="ask", description="Answer from the documents, quoting them word for word")
        @app_commands.describe(question="What do you want to know?", document="Answer from this document only")
        @app_commands.autocomplete(document=complete_document)
        @app_commands.checks.dynamic_cooldown(bot.cooldown)
        async def ask(interaction: discord.Interaction, question: str, document: str | None = None) -> None:
            check_question(question.strip(), bot.settings.max_question_chars)  # before deferring: errors stay private
            shelf = bot.open_shelf(interaction)
            answerer = await shelf.opened()  # opened at start: at once
            if document is not None and await asyncio.to_thread(answerer.searcher.document_info, document) is None:
                raise DocumentNotIndexed(f"{document!r} is not among the documents here; pick one from the list")
            await think(interaction, private=shelf.shelf.private)
            embed, answer = await bot.answer_to_embed(answerer, question, document)
            view = AnswerView(bot) if answer.answered else discord.utils.MISSING
            message = await send_answer(interaction, embed=embed, view=view)
            if answer.answered:
                await asyncio.to_thread(shelf.feedback.remember, message.id, answer)
            else:
                await asyncio.to_thread(shelf.feedback.remember_unanswered, answer)

        @self.tree.command(name="source", description="Show what is indexed about one document")
        @app_commands.describe(document="The document's path in the corpus")
        async def source(interaction: discord.Interaction, document: str) -> None:
            shelf = bot.open_shelf(interaction)
            answerer = await shelf.opened()
            info = await asyncio.to_thread(answerer.searcher.document_info, document)
            if info is None:
                await interaction.response.send_message(f"{code_span(document)} is not in the index.", ephemeral=True)
                return
            embed = discord.Embed(title=fit(info["title"] or document, TITLE_MAX), colour=discord.Colour.blurple())
            embed.add_field(name="Source", value=code_span(document, FIELD_VALUE_MAX), inline=False)
            embed.add_field(name="Kind", value=info["kind"])
            embed.add_field(name="Size", value=f"{info['bytes']:,} bytes, {info['chars']:,} characters")
            embed.add_field(name="Passages", value=f"{info['passages']:,}")
            embed.add_field(name="Indexed", value=info["indexed_at"])
            await interaction.response.send_message(embed=embed, ephemeral=shelf.shelf.private)

        source.autocomplete("document")(complete_document)

        @self.tree.command(name="documents", description="List the indexed documents")
        @app_commands.describe(page="Page number (20 documents a page)")
        async def documents(interaction: discord.Interaction, page: app_commands.Range[int, 1, None] = 1) -> None:
            shelf = bot.open_shelf(interaction)
            searcher = (await shelf.opened()).searcher
            total = searcher.manifest.documents
            pages = max(1, -(-total // DOCUMENTS_PER_PAGE))
            page = min(page, pages)
            rows = await asyncio.to_thread(searcher.list_documents, "", (page - 1) * DOCUMENTS_PER_PAGE, DOCUMENTS_PER_PAGE)
            lines = [_document_line(s, t) for s, t in rows]
            embed = discord.Embed(title=f"{total:,} documents indexed", description="\n".join(lines) or "None yet.")
            embed.set_footer(text=f"page {page} of {pages} · /documents page:N")
            changes = await asyncio.to_thread(shelf.ledger.entries, LEDGER_SHOWN)
            if changes:
                embed.add_field(name="Recently added and removed", value=_ledger_lines(changes), inline=False)
            await interaction.response.send_message(embed=embed, ephemeral=shelf.shelf.private)

        @self.tree.command(name="reindex", description="Rebuild the index from the documents (admins)")
        @app_commands.default_permissions(manage_guild=True)
        @app_commands.check(bot.is_admin)
        async def reindex(interaction: discord.Interaction) -> None:
            shelf = bot.open_shelf(interaction)
            await think(interaction, private=shelf.shelf.private)
            if shelf.building.locked():
                await interaction.edit_original_response(content="A reindex is already running.")
                interaction.extras[PLACEHOLDER] = False
                return
            async with shelf.building:
                await bot.reindex(interaction, shelf)

        @self.tree.command(name="report", description="What the documents here are missing: unanswered questions, "
                           "quotes voted down (moderators)")
        @app_commands.default_permissions(manage_guild=True)
        @app_commands.check(bot.is_admin)
        async def report(interaction: discord.Interaction) -> None:
            from bot.shelves.report import feedback_report, report_embed

            shelf = bot.open_shelf(interaction)
            found = await asyncio.to_thread(feedback_report, shelf.shelf.settings.feedback_db,
                                            bot.settings.feedback_report_top)
            await interaction.response.send_message(embed=report_embed(found, shelf.shelf.name), ephemeral=True)

        @self.tree.command(name="add", description="Add documents to the documents here (moderators)")
        @app_commands.describe(file="A document: PDF, Word, PowerPoint, OpenDocument, EPUB, HTML, Markdown, text",
                               file2="Another document", file3="Another document")
        @app_commands.check(bot.may_change_documents)
        async def add(interaction: discord.Interaction, file: discord.Attachment,
                      file2: discord.Attachment | None = None, file3: discord.Attachment | None = None) -> None:
            shelf = bot.open_shelf(interaction)
            limits = UploadLimits.from_settings(bot.settings)
            attachments = [attachment for attachment in (file, file2, file3) if attachment is not None]
            limits.check_count(len(attachments))  # before deferring: a refusal stays private
            await think(interaction, private=shelf.shelf.private)
            lines, added = [], 0
            for attachment in attachments:
                line, saved = await bot.save_attachment(interaction, shelf, attachment, limits)
                lines.append(line)
                added += saved
            if not added:
                await interaction.edit_original_response(content="\n".join(lines))
                interaction.extras[PLACEHOLDER] = False
                return
            async with shelf.building:
                await bot.reindex(interaction, shelf, lines)

        @self.tree.command(name="remove", description="Remove a document from the documents here (moderators)")
        @app_commands.describe(document="The document's path in the corpus")
        @app_commands.autocomplete(document=complete_document)
        @app_commands.check(bot.may_change_documents)
        async def remove(interaction: discord.Interaction, document: str) -> None:
            shelf = bot.open_shelf(interaction)
            await asyncio.to_thread(removable, shelf.shelf.settings, document)  # refused: a private reply, first
            await think(interaction, private=shelf.shelf.private)
            async with shelf.building:
                await bot.remove_and_reindex(interaction, shelf, document)

    async def save_attachment(self, interaction: discord.Interaction, shelf: OpenShelf, attachment: discord.Attachment,
                              limits: UploadLimits) -> tuple[str, bool]:
        """Save one attached file into the shelf's corpus: the line to report, and whether it was saved."""
        corpus = shelf.shelf.settings.corpus_dir
        try:
            limits.check_size(attachment.filename, attachment.size)  # as Discord reports it: before downloading
            data = await attachment.read()
            path = await asyncio.to_thread(save_upload, corpus, attachment.filename, data, limits)
        except UploadRefused as error:
            reason = fit(without_paths(str(error), self.settings), 300)
            return f"{code_span(attachment.filename, 120)}: not added: {reason}", False
        source = path.relative_to(corpus).as_posix()
        await asyncio.to_thread(shelf.ledger.record, interaction.user.id, str(interaction.user), ADDED, source,
                                hashlib.sha256(data).hexdigest())
        return f"Added {code_span(source, 200)}.", True

    async def reindex(self, interaction: discord.Interaction, shelf: OpenShelf, done: list[str] = ()) -> None:
        """Rebuild the shelf's index off the event loop, progress edited into the reply (after the lines of
        what was `done` first), then switch to it; the shelf answers from its old index until then."""
        try:
            summary = await self.rebuild_shown(interaction, shelf, done)
        except BuildLocked:
            await interaction.edit_original_response(content="Another build is running (CLI or watch); try again soon.")
            interaction.extras[PLACEHOLDER] = False
            return
        await asyncio.to_thread((await shelf.opened()).refresh)
        await interaction.edit_original_response(content=self._build_report(summary, done))
        interaction.extras[PLACEHOLDER] = False

    async def rebuild_shown(self, interaction: discord.Interaction, shelf: OpenShelf, done: list[str] = (),
                            allow_drop_of: tuple[str, ...] = ()):
        """The shelf's index rebuilt in a child process, its progress edited into the reply after `done`."""
        progress = _CountingProgress()

        async def show_progress() -> None:
            await interaction.edit_original_response(content="\n".join([*done, f"Reindexing… {progress.describe()}"]))

        return await rebuild(shelf.shelf.settings, progress, REBUILD_POLL_SECONDS, show_progress, allow_drop_of)

    async def remove_and_reindex(self, interaction: discord.Interaction, shelf: OpenShelf, document: str) -> None:
        """Set the document aside, rebuild without it, then delete it; if the rebuild fails, put it back
        and say why. The reply tells which of the two happened."""
        settings = shelf.shelf.settings
        await asyncio.to_thread(settle_leftovers, settings)
        aside = await asyncio.to_thread(set_aside, settings, document)
        shown = code_span(document, 200)
        try:
            summary = await self.rebuild_shown(interaction, shelf, [f"Removing {shown}…"], allow_drop_of=(document,))
        except Exception as error:  # noqa: BLE001 - whatever failed, the document goes back and the reply says so
            await asyncio.to_thread(aside.restore)
            reason = fit(user_message(error, settings, "/remove's rebuild"), 600)
            await interaction.edit_original_response(
                content=f"Not removed: {shown} was put back, because the rebuild without it failed: {reason}")
            interaction.extras[PLACEHOLDER] = False
            return
        except BaseException:  # cancelled: the document must not be lost either way
            aside.restore()  # on the loop: a cancelled task may not get to await a thread
            raise
        await asyncio.to_thread(aside.discard)
        await asyncio.to_thread(shelf.ledger.record, interaction.user.id, str(interaction.user), REMOVED,
                                document, aside.sha256)
        await asyncio.to_thread((await shelf.opened()).refresh)
        await interaction.edit_original_response(content=self._build_report(summary, [f"Removed {shown}."]))
        interaction.extras[PLACEHOLDER] = False

    def _build_report(self, summary, done: list[str] = ()) -> str:
        # Skipped files are listed while they fit in one message, each whole.
        text = "\n".join([*done, summary.describe().capitalize() + "."])
        if summary.skipped:
            text += f" Skipped {len(summary.skipped)}:"
            for shown, skip in enumerate(summary.skipped):
                item = f" {code_span(skip.source)} ({fit(without_paths(skip.reason, self.settings), 200)}),"
                rest = f" and {len(summary.skipped) - shown} more."
                if len(text) + len(item) + len(rest) > MESSAGE_MAX:
                    return text.rstrip(",") + rest
                text += item
            text = text.rstrip(",") + "."
        return text

    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot or not self.settings.discord_mentions or self.user is None:
            return
        guild_id = message.guild.id if message.guild else None
        if not self.serves(guild_id):
            return
        # A mention typed in the message asks. So does a follow-up: a message in a thread the bot opened, or a
        # reply to one of its answers, that reads as a question (a reply pings the bot, but "thanks!" is no question).
        mention = re.compile(rf"<@!?{self.user.id}>")
        previous = self._conversation_of(message)
        if not mention.search(message.content) and (previous is None or not reads_as_question(message.content)):
            return
        # The cooldown comes first, so that empty or overlong mentions can't draw a reply every time.
        retry_after = self.mention_limiter.retry_after(message.author.id)
        if retry_after:
            if self.mention_limiter.warn_once(message.author.id):
                await message.reply(f"Slow down a little: you can ask again in {retry_after:.0f} s.", mention_author=False)
            return
        shelf = self.shelf_for(guild_id, places(message.channel), role_ids(message.author))
        if shelf is None or shelf.shelf.private:
            # A reply in the channel is seen by all: a shelf for some roles only answers through /ask.
            await message.reply(NO_SHELF if shelf is None else PRIVATE_SHELF, mention_author=False)
            return
        question = mention.sub("", message.content).strip()
        try:
            check_question(question, self.settings.max_question_chars)
        except VerbatimError as error:
            await message.reply(f"{error}. Ask me like this: @{self.user.name} What is this article about?", mention_author=False)
            return
        try:
            async with message.channel.typing():
                turn = await self.answering(answer_followup, await shelf.opened(), question, previous)
        except Exception as error:  # the asker hears of it; discord.py would only log it
            await message.reply(user_message(error, self.settings, "a mention"), mention_author=False)
            return
        answer = turn.answer
        embed = followup_embed(answer_embed(answer, shelf.answerer.confident_above), turn.read_with)
        view = AnswerView(self) if answer.answered else discord.utils.MISSING
        if previous is None:
            sent, thread_id = await self._reply_in_thread(message, question, embed, view)
        else:  # a follow-up is answered where it was asked: in the thread, or as a reply
            sent = await message.reply(embed=embed, view=view, mention_author=False)
            thread_id = message.channel.id if message.channel.id in self.conversations else None
        # The thread's last answer, and this answer itself, are what the next follow-up is read with.
        self.conversations.remember(turn, sent.id, *([thread_id] if thread_id is not None else []))
        if answer.answered:
            await asyncio.to_thread(shelf.feedback.remember, sent.id, answer)
        else:
            await asyncio.to_thread(shelf.feedback.remember_unanswered, answer)

    def _conversation_of(self, message: discord.Message) -> Turn | None:
        """The turn a message follows up: the answer it replies to, else the last answer in its thread."""
        reference = message.reference
        if reference is not None and reference.message_id is not None:
            replied = self.conversations.get(reference.message_id)
            if replied is not None:
                return replied
        return self.conversations.get(message.channel.id)

    async def _reply_in_thread(
        self, message: discord.Message, question: str, embed: discord.Embed, view
    ) -> tuple[discord.Message, int | None]:
        """The answer, in a new thread on the question where threads may be opened (with its id), else as a reply."""
        channel = message.channel
        if (self.settings.discord_mention_threads and channel.type in THREADABLE
                and channel.permissions_for(channel.guild.me).create_public_threads):
            try:
                thread = await message.create_thread(name=question[:100])
                return await thread.send(embed=embed, view=view), thread.id
            except (discord.Forbidden, discord.HTTPException):
                pass  # threads not allowed here: answer in the channel
        return await message.reply(embed=embed, view=view, mention_author=False), None

    async def close(self) -> None:
        await super().close()
        self._answer_pool.shutdown(wait=False, cancel_futures=True)
        for shelf in self.shelves.values():
            shelf.feedback.close()
            shelf.ledger.close()



def ledger_path(shelf: Shelf) -> Path:
    """Where a shelf's record of uploads and removals lives: in its index directory, beside web.sqlite."""
    return shelf.settings.index_dir / "uploads.sqlite"


def _ledger_lines(entries) -> str:
    lines = []
    for entry in entries:
        verb = "added" if entry.action == ADDED else "removed"
        line = f"{entry.when[:16].replace('T', ' ')} · {fit(entry.actor_name, 40)} {verb} {code_span(entry.source, 120)}"
        if len("\n".join([*lines, line])) > FIELD_VALUE_MAX:
            break
        lines.append(line)
    return "\n".join(lines)


def followup_embed(embed: discord.Embed, read_with: str | None) -> discord.Embed:
    """`embed`, headed by the earlier question a follow-up was read with, if it was."""
    if read_with:
        # An author line is plain text (no markdown to escape) and never pings.
        embed.set_author(name=fit_plain(f"Read with your earlier question: {read_with}", AUTHOR_NAME_MAX))
    return embed


def fit_plain(text: str, limit: int) -> str:
    """`text` on one line in at most `limit` characters."""
    return clip(" ".join(text.split()), limit)


def _document_line(source: str, title: str) -> str:
    # Source and title are fitted apart, so a long one never cuts the other's markup open.
    return f"{code_span(source, 120)} — {fit(title, 75)}"


class _CountingProgress:
    def __init__(self) -> None:
        self.label, self.total, self.done = "starting", 0, 0

    def start(self, label: str, total: int) -> None:
        self.label, self.total, self.done = label, total, 0

    def advance(self, count: int) -> None:
        self.done += count

    def describe(self) -> str:
        return f"{self.label}: {self.done:,}/{self.total:,}" if self.total else self.label


class CannotReachDiscord(VerbatimError):
    """No connection to Discord's servers."""


def run(settings: Settings, sync_globally: bool = False) -> None:
    """Start the bot and run until SIGINT (raised again as KeyboardInterrupt) or SIGTERM."""
    if settings.discord_token is None:
        raise MissingToken(
            "no Discord token: set VERBATIM_DISCORD_TOKEN in the environment or .env (see the README's Discord set-up)"
        )
    bot = VerbatimBot(settings, sync_globally=sync_globally)
    stopped_by: list[int] = []

    def stop(signum: int) -> None:
        stopped_by.append(signum)
        asyncio.ensure_future(bot.close())

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop, signum)
        async with bot:
            await bot.start(settings.discord_token.get_secret_value())

    try:
        asyncio.run(main())
    except Exception as error:
        if not stopped_by:
            raise _explained(error) from None
        # Stopped while starting: whatever the half-started client raised is no news.
        log.debug("stopped while starting", exc_info=error)
    if signal.SIGINT in stopped_by:
        raise KeyboardInterrupt


def _explained(error: Exception) -> Exception:
    # The failures of a start, as one line a user can act on; anything else stays itself.
    if isinstance(error, discord.LoginFailure):
        return VerbatimError("Discord rejected the token in VERBATIM_DISCORD_TOKEN (check it in the developer portal)")
    if isinstance(error, discord.PrivilegedIntentsRequired):
        return VerbatimError(
            "Discord refused the message-content intent: enable it for the bot in the developer portal, "
            "or set VERBATIM_DISCORD_MESSAGE_CONTENT=false"
        )
    if isinstance(error, (aiohttp.ClientError, OSError, asyncio.TimeoutError, discord.GatewayNotFound,
                          discord.DiscordServerError, discord.ConnectionClosed)):
        reason = " ".join(str(error).split()) or type(error).__name__
        return CannotReachDiscord(f"cannot reach Discord: {reason} (check the network, proxy or firewall)")
    return error
