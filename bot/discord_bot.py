"""`verbatim discord`: slash commands and mentions over `Answerer.answer`.

Retrieval runs in worker threads (`asyncio.to_thread`) so the event loop never
blocks; every reply is rendered by bot/discord_render.py within Discord's limits.
"""

from __future__ import annotations

import asyncio
import logging
import re
import signal

import discord
from discord import app_commands

from bot.answer import Answerer, check_question
from bot.locate import answer_located
from bot.discord_render import FIELD_VALUE_MAX, answer_embed, context_text, safe
from bot.feedback import FeedbackStore
from config import Settings
from index.build import build_index
from index.errors import BuildLocked, VerbatimError

log = logging.getLogger("verbatim.discord")
DOCUMENTS_PER_PAGE = 20
INDEX_POLL_SECONDS = 5.0


class MissingToken(VerbatimError):
    """No Discord token is configured."""


class NotAdmin(app_commands.CheckFailure):
    """The member may not run an admin command."""


class AnswerView(discord.ui.View):
    """Buttons under an answer; persistent (fixed ids, no timeout) so they work after a restart."""

    def __init__(self, bot: VerbatimBot) -> None:
        super().__init__(timeout=None)
        self.bot = bot

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
    """Turns every command error into a friendly ephemeral reply; tracebacks go to the log."""

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        original = getattr(error, "original", error)
        if isinstance(error, app_commands.CommandOnCooldown):
            message = f"Slow down a little: you can ask again in {error.retry_after:.0f} s."
        elif isinstance(error, (NotAdmin, app_commands.MissingPermissions)):
            message = "Only members with the Manage Server permission (or the bot's owners) can do that."
        elif isinstance(error, app_commands.NoPrivateMessage):
            message = "That command works in a server, not in direct messages."
        elif isinstance(original, VerbatimError):
            message = str(original)
        else:
            log.error("error in /%s", getattr(interaction.command, "name", "?"), exc_info=original)
            message = "Something went wrong on my side; it has been logged."
        await send_ephemeral(interaction, message)


async def send_ephemeral(interaction: discord.Interaction, message: str) -> None:
    """Reply privately whether or not the interaction was already answered or deferred."""
    if interaction.response.is_done():
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
        self.feedback = FeedbackStore(settings.feedback_db)
        self.tree = VerbatimTree(self)
        self.build_lock = asyncio.Lock()
        self._mention_cooldowns: dict[int, app_commands.Cooldown] = {}
        self._add_commands()

    async def setup_hook(self) -> None:
        if self.answerer is None:
            self.answerer = await asyncio.to_thread(Answerer, self.settings)
        self.add_view(AnswerView(self))
        for guild_id in self.settings.discord_guild_ids:
            guild = discord.Object(id=guild_id)
            self.tree.copy_global_to(guild=guild)
            await self._sync(guild)
        if self.sync_globally:
            await self._sync(None)
        self._index_watcher = asyncio.create_task(self._follow_index())

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
        if interaction.user.id in self.settings.discord_owner_ids or interaction.permissions.manage_guild:
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
            await interaction.response.defer(thinking=True)
            embed, answer = await bot.answer_to_embed(question)
            view = AnswerView(bot) if answer.answered else discord.utils.MISSING
            message = await interaction.followup.send(embed=embed, view=view, wait=True)
            if answer.answered:
                await asyncio.to_thread(bot.feedback.remember, message.id, answer)

        @self.tree.command(name="source", description="Show what is indexed about one document")
        @app_commands.describe(document="The document's path in the corpus")
        async def source(interaction: discord.Interaction, document: str) -> None:
            info = await asyncio.to_thread(bot.answerer.searcher.document_info, document)
            if info is None:
                await interaction.response.send_message(f"`{safe(document)}` is not in the index.", ephemeral=True)
                return
            embed = discord.Embed(title=safe(info["title"])[:256] or safe(document)[:256], colour=discord.Colour.blurple())
            embed.add_field(name="Source", value=safe(document)[:FIELD_VALUE_MAX], inline=False)
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
            lines = [f"`{safe(s)}` — {safe(t)}"[:200] for s, t in rows]
            embed = discord.Embed(title=f"{total:,} documents indexed", description="\n".join(lines) or "None yet.")
            embed.set_footer(text=f"page {page} of {pages} · /documents page:N")
            await interaction.response.send_message(embed=embed)

        @self.tree.command(name="reindex", description="Rebuild the index from the documents (admins)")
        @app_commands.default_permissions(manage_guild=True)
        @app_commands.check(bot.is_admin)
        async def reindex(interaction: discord.Interaction) -> None:
            await interaction.response.defer(thinking=True)
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
            return
        await asyncio.to_thread(self.answerer.refresh)
        text = summary.describe().capitalize() + "."
        if summary.skipped:
            text += f" Skipped {len(summary.skipped)}: " + ", ".join(f"`{safe(s.source)}` ({s.reason})" for s in summary.skipped[:10])
        await interaction.edit_original_response(content=text[:2000])

    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot or not self.settings.discord_mentions or self.user is None:
            return
        if self.user not in message.mentions:
            return
        question = re.sub(rf"<@!?{self.user.id}>", "", message.content).strip()
        try:
            check_question(question, self.settings.max_question_chars)
        except VerbatimError as error:
            await message.reply(f"{error}. Ask me like this: @{self.user.name} What is this article about?", mention_author=False)
            return
        bucket = self._mention_cooldowns.setdefault(message.author.id, self.cooldown(None))  # type: ignore[arg-type]
        retry_after = bucket.update_rate_limit()
        if retry_after:
            await message.reply(f"Slow down a little: you can ask again in {retry_after:.0f} s.", mention_author=False)
            return
        async with message.channel.typing():
            embed, answer = await self.answer_to_embed(question)
        view = AnswerView(self) if answer.answered else discord.utils.MISSING
        sent = await self._reply_in_thread(message, question, embed, view)
        if answer.answered:
            await asyncio.to_thread(self.feedback.remember, sent.id, answer)

    async def _reply_in_thread(self, message: discord.Message, question: str, embed: discord.Embed, view) -> discord.Message:
        channel = message.channel
        if (self.settings.discord_mention_threads and isinstance(channel, discord.TextChannel)
                and channel.permissions_for(channel.guild.me).create_public_threads):
            try:
                thread = await message.create_thread(name=question[:100])
                return await thread.send(embed=embed, view=view)
            except (discord.Forbidden, discord.HTTPException):
                pass  # threads not allowed here: answer in the channel
        return await message.reply(embed=embed, view=view, mention_author=False)

    async def close(self) -> None:
        await super().close()
        self.feedback.close()


class _CountingProgress:
    def __init__(self) -> None:
        self.label, self.total, self.done = "starting", 0, 0

    def start(self, label: str, total: int) -> None:
        self.label, self.total, self.done = label, total, 0

    def advance(self, count: int) -> None:
        self.done += count

    def describe(self) -> str:
        return f"{self.label}: {self.done:,}/{self.total:,}" if self.total else self.label


def run(settings: Settings, sync_globally: bool = False) -> None:
    """Start the bot and run until SIGINT/SIGTERM."""
    if settings.discord_token is None:
        raise MissingToken(
            "no Discord token: set VERBATIM_DISCORD_TOKEN in the environment or .env (see the README's Discord set-up)"
        )
    discord.utils.setup_logging(level=logging.INFO)
    bot = VerbatimBot(settings, sync_globally=sync_globally)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, lambda: asyncio.ensure_future(bot.close()))
        async with bot:
            await bot.start(settings.discord_token.get_secret_value())

    try:
        asyncio.run(main())
    except discord.LoginFailure:
        raise VerbatimError("Discord rejected the token in VERBATIM_DISCORD_TOKEN (check it in the developer portal)") from None
    except discord.PrivilegedIntentsRequired:
        raise VerbatimError(
            "Discord refused the message-content intent: enable it for the bot in the developer portal, "
            "or set VERBATIM_DISCORD_MESSAGE_CONTENT=false"
        ) from None
