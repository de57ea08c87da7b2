"""`verbatim discord`: slash commands and mentions over `Answerer.answer`.

Retrieval runs in worker threads (`asyncio.to_thread`) so the event loop never
blocks; every reply is rendered by bot/discord_render.py within Discord's limits.
"""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import time

import aiohttp
import discord
from discord import app_commands

from bot.answer import Answerer, check_question
from bot.locate import answer_located
from bot.discord_render import (
    FIELD_VALUE_MAX, MESSAGE_MAX, TITLE_MAX, answer_embed, code_span, context_text, fit, without_paths,
)
from bot.feedback import FeedbackStore
from bot.followup import Conversations, Turn, answer_followup, reads_as_question
from config import Settings
from index.build import build_index
from index.errors import BuildLocked, VerbatimError

log = logging.getLogger("verbatim.discord")
DOCUMENTS_PER_PAGE = 20
INDEX_POLL_SECONDS = 5.0
# What everyone sees when a public "thinking…" placeholder can't become an answer: no details, no paths.
PUBLIC_FAILURE = "Sorry, I couldn't finish this one."
# `interaction.extras` key: a public "thinking…" placeholder is showing and no reply has replaced it yet.
PLACEHOLDER = "verbatim:public-placeholder"
NOT_HERE = "I only answer in the servers I was set up for."
# Channels a thread can be opened in.
THREADABLE = (discord.ChannelType.text, discord.ChannelType.news)
AUTHOR_NAME_MAX = 256


class MissingToken(VerbatimError):
    """No Discord token is configured."""


class NotAdmin(app_commands.CheckFailure):
    """The member may not run an admin command."""


def allowed_guilds(settings: Settings) -> frozenset[int] | None:
    """The servers the bot serves: `discord_allowed_guild_ids`, else `discord_guild_ids`; None means every server."""
    chosen = settings.discord_allowed_guild_ids or settings.discord_guild_ids
    return frozenset(chosen) if chosen else None


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
        if self.bot.serves(interaction.guild_id):
            return True
        await interaction.response.send_message(NOT_HERE, ephemeral=True)
        return False

    async def on_error(self, interaction: discord.Interaction, error: Exception, item: discord.ui.Item) -> None:
        await send_private(interaction, user_message(error, self.bot.settings, f"button {item.custom_id}"))

    @discord.ui.button(label="Show context", style=discord.ButtonStyle.secondary, custom_id="verbatim:context")
    async def show_context(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        quotes = self.bot.feedback.quotes(interaction.message.id) if interaction.message else None
        if not quotes:
            await interaction.response.send_message("I no longer have the context of this answer.", ephemeral=True)
            return
        texts = await asyncio.to_thread(self.bot.contexts, quotes)
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
        if interaction.message is not None:
            await asyncio.to_thread(self.bot.feedback.vote, interaction.message.id, interaction.user.id, vote)
        await interaction.response.send_message("Thanks, noted.", ephemeral=True)


class VerbatimTree(app_commands.CommandTree):
    """Serves only allowed servers; turns every command error into a private reply (tracebacks go to the log)."""

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if self.client.serves(interaction.guild_id):
            return True
        if interaction.type is discord.InteractionType.application_command:
            await interaction.response.send_message(NOT_HERE, ephemeral=True)
        return False  # autocomplete elsewhere gets no choices

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        original = getattr(error, "original", error)
        if isinstance(error, app_commands.CommandOnCooldown):
            message = f"Slow down a little: you can ask again in {error.retry_after:.0f} s."
        elif isinstance(error, (NotAdmin, app_commands.MissingPermissions)):
            message = "Only members with the Manage Server permission (or the bot's owners) can do that."
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


async def think_publicly(interaction: discord.Interaction) -> None:
    """Defer with a public "thinking…" placeholder, remembered so an error can't leak through it."""
    await interaction.response.defer(thinking=True)
    interaction.extras[PLACEHOLDER] = True


async def send_public(interaction: discord.Interaction, **message) -> discord.WebhookMessage:
    """The public reply that replaces the placeholder."""
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
        intents = discord.Intents.default()
        intents.message_content = settings.discord_message_content
        # No answer may ever ping anyone, whatever a document says.
        super().__init__(intents=intents, allowed_mentions=discord.AllowedMentions.none())
        self.settings = settings
        self.answerer = answerer
        self.sync_globally = sync_globally
        self.feedback = FeedbackStore(settings.feedback_db, settings.feedback_retention_days)
        self.tree = VerbatimTree(self)
        self.build_lock = asyncio.Lock()
        self.mention_limiter = MentionLimiter(settings.discord_cooldown_rate, settings.discord_cooldown_seconds)
        # The last turn of each thread the bot opened and of each answer it gave: what a follow-up is read with.
        self.conversations = Conversations(settings.followup_threads)
        self._add_commands()

    async def setup_hook(self) -> None:
        # Logging starts once logged in: a start that can't reach Discord prints one line, not a log.
        discord.utils.setup_logging(level=logging.INFO)
        if self.answerer is None:
            self.answerer = await asyncio.to_thread(Answerer, self.settings)
        self.add_view(AnswerView(self))
        for guild_id in self.settings.discord_guild_ids:
            guild = discord.Object(id=guild_id)
            self.tree.copy_global_to(guild=guild)
            await self._sync(guild)
        if self.sync_globally:
            await self._sync(None)
        if allowed_guilds(self.settings) is None:
            log.warning("answering in every server the bot is invited to: set discord_allowed_guild_ids to limit it")
        self._index_watcher = asyncio.create_task(self._follow_index())

    def serves(self, guild_id: int | None) -> bool:
        """Whether to answer in this server (None: a direct message)."""
        if guild_id is None:
            return self.settings.discord_allow_dms
        allowed = allowed_guilds(self.settings)
        return allowed is None or guild_id in allowed

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
            try:
                await asyncio.to_thread(self.answerer.refresh)
            except VerbatimError as error:
                log.warning("the rebuilt index cannot be loaded yet: %s", error)

    def cooldown(self, interaction: discord.Interaction) -> app_commands.Cooldown:
        return app_commands.Cooldown(self.settings.discord_cooldown_rate, self.settings.discord_cooldown_seconds)

    def is_admin(self, interaction: discord.Interaction) -> bool:
        if interaction.user.id in self.settings.discord_owner_ids:
            return True
        # Manage Server counts only inside a server (a direct message has none to manage).
        if interaction.guild_id is not None and interaction.permissions.manage_guild:
            return True
        raise NotAdmin()

    def contexts(self, quotes) -> list[str]:
        """The surrounding passage of each quote, as messages."""
        searcher = self.answerer.searcher
        texts = []
        for quote in quotes:
            info = searcher.document_info(quote.source)
            text = searcher.document_text(info["id"]) if info is not None else ""
            # After an edit the old offsets point elsewhere: show context only where they still hold the quote.
            if text[quote.start : quote.end] == quote.text:
                texts.append(context_text(quote, text))
        return texts or ["Those documents have changed since this answer; ask again for current quotes."]

    async def answer_to_embed(self, question: str) -> tuple[discord.Embed, object]:
        answer = await asyncio.to_thread(answer_located, self.answerer, question)  # with slide, section, link
        return answer_embed(answer, self.settings.min_confidence), answer

    def _add_commands(self) -> None:
        bot = self

        @self.tree.command(name="ask", description="Answer from the documents, quoting them word for word")
        @app_commands.describe(question="What do you want to know?")
        @app_commands.checks.dynamic_cooldown(bot.cooldown)
        async def ask(interaction: discord.Interaction, question: str) -> None:
            check_question(question.strip(), bot.settings.max_question_chars)  # before deferring: errors stay private
            await think_publicly(interaction)
            embed, answer = await bot.answer_to_embed(question)
            view = AnswerView(bot) if answer.answered else discord.utils.MISSING
            message = await send_public(interaction, embed=embed, view=view)
            if answer.answered:
                await asyncio.to_thread(bot.feedback.remember, message.id, answer)

        @self.tree.command(name="source", description="Show what is indexed about one document")
        @app_commands.describe(document="The document's path in the corpus")
        async def source(interaction: discord.Interaction, document: str) -> None:
            info = await asyncio.to_thread(bot.answerer.searcher.document_info, document)
            if info is None:
                await interaction.response.send_message(f"{code_span(document)} is not in the index.", ephemeral=True)
                return
            embed = discord.Embed(title=fit(info["title"] or document, TITLE_MAX), colour=discord.Colour.blurple())
            embed.add_field(name="Source", value=code_span(document, FIELD_VALUE_MAX), inline=False)
            embed.add_field(name="Kind", value=info["kind"])
            embed.add_field(name="Size", value=f"{info['bytes']:,} bytes, {info['chars']:,} characters")
            embed.add_field(name="Passages", value=f"{info['passages']:,}")
            embed.add_field(name="Indexed", value=info["indexed_at"])
            await interaction.response.send_message(embed=embed)

        @source.autocomplete("document")
        async def complete_source(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
            rows = await asyncio.to_thread(bot.answerer.searcher.list_documents, current, 0, 25)
            return [app_commands.Choice(name=s, value=s) for s, _ in rows if len(s) <= 100]

        @self.tree.command(name="documents", description="List the indexed documents")
        @app_commands.describe(page="Page number (20 documents a page)")
        async def documents(interaction: discord.Interaction, page: app_commands.Range[int, 1, None] = 1) -> None:
            searcher = bot.answerer.searcher
            total = searcher.manifest.documents
            pages = max(1, -(-total // DOCUMENTS_PER_PAGE))
            page = min(page, pages)
            rows = await asyncio.to_thread(searcher.list_documents, "", (page - 1) * DOCUMENTS_PER_PAGE, DOCUMENTS_PER_PAGE)
            lines = [_document_line(s, t) for s, t in rows]
            embed = discord.Embed(title=f"{total:,} documents indexed", description="\n".join(lines) or "None yet.")
            embed.set_footer(text=f"page {page} of {pages} · /documents page:N")
            await interaction.response.send_message(embed=embed)

        @self.tree.command(name="reindex", description="Rebuild the index from the documents (admins)")
        @app_commands.default_permissions(manage_guild=True)
        @app_commands.check(bot.is_admin)
        async def reindex(interaction: discord.Interaction) -> None:
            await think_publicly(interaction)
            if bot.build_lock.locked():
                await interaction.edit_original_response(content="A reindex is already running.")
                return
            async with bot.build_lock:
                await bot.reindex(interaction)

    async def reindex(self, interaction: discord.Interaction) -> None:
        progress = _CountingProgress()
        build = asyncio.create_task(asyncio.to_thread(build_index, self.settings, progress))
        while not build.done():
            await asyncio.wait({build}, timeout=2.0)
            if not build.done():
                await interaction.edit_original_response(content=f"Reindexing… {progress.describe()}")
        try:
            summary = build.result()
        except BuildLocked:
            await interaction.edit_original_response(content="Another build is running (CLI or watch); try again soon.")
            interaction.extras[PLACEHOLDER] = False
            return
        await asyncio.to_thread(self.answerer.refresh)
        await interaction.edit_original_response(content=self._build_report(summary))
        interaction.extras[PLACEHOLDER] = False

    def _build_report(self, summary) -> str:
        # Skipped files are listed while they fit in one message, each whole.
        text = summary.describe().capitalize() + "."
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
        if not self.serves(message.guild.id if message.guild else None):
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
        question = mention.sub("", message.content).strip()
        try:
            check_question(question, self.settings.max_question_chars)
        except VerbatimError as error:
            await message.reply(f"{error}. Ask me like this: @{self.user.name} What is this article about?", mention_author=False)
            return
        try:
            async with message.channel.typing():
                turn = await asyncio.to_thread(answer_followup, self.answerer, question, previous)
        except Exception as error:  # the asker hears of it; discord.py would only log it
            await message.reply(user_message(error, self.settings, "a mention"), mention_author=False)
            return
        answer = turn.answer
        embed = followup_embed(answer_embed(answer, self.settings.min_confidence), turn.read_with)
        view = AnswerView(self) if answer.answered else discord.utils.MISSING
        if previous is None:
            sent, thread_id = await self._reply_in_thread(message, question, embed, view)
        else:  # a follow-up is answered where it was asked: in the thread, or as a reply
            sent = await message.reply(embed=embed, view=view, mention_author=False)
            thread_id = message.channel.id if message.channel.id in self.conversations else None
        # The thread's last answer, and this answer itself, are what the next follow-up is read with.
        self.conversations.remember(turn, sent.id, *([thread_id] if thread_id is not None else []))
        if answer.answered:
            await asyncio.to_thread(self.feedback.remember, sent.id, answer)

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
        self.feedback.close()


def followup_embed(embed: discord.Embed, read_with: str | None) -> discord.Embed:
    """`embed`, headed by the earlier question a follow-up was read with, if it was."""
    if read_with:
        # An author line is plain text (no markdown to escape) and never pings.
        embed.set_author(name=fit_plain(f"Read with your earlier question: {read_with}", AUTHOR_NAME_MAX))
    return embed


def fit_plain(text: str, limit: int) -> str:
    """`text` on one line in at most `limit` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
