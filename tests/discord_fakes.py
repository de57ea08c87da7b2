"""Offline Discord: real interaction payloads dispatched through the bot's real CommandTree.

Only the network edge is faked, and strictly, with the rules Discord's HTTP API
enforces (checked 2026-11-25, see /work/shared/notes/discord.md):
- one initial response per interaction; a second raises `discord.InteractionResponded`;
- the first follow-up after a `defer()` replaces the "thinking…" placeholder and keeps
  the defer's visibility, whatever it asks for; later follow-ups choose their own;
- message and embed limits: an oversized payload is refused like Discord's HTTP 400;
- attachments: an interaction carries only their metadata (name, size, type, CDN URL); the bytes
  are fetched from the CDN by `Attachment.read()`, and `CDN.fetched` records every fetch.
"""

from __future__ import annotations

import itertools
import sys
from dataclasses import dataclass, field

import discord

_ids = itertools.count(1000)

MESSAGE_MAX = 2000
TITLE_MAX = 256
DESCRIPTION_MAX = 4096
FIELD_NAME_MAX = 256
FIELD_VALUE_MAX = 1024
FOOTER_MAX = 2048
AUTHOR_NAME_MAX = 256
FIELDS_MAX = 25
EMBED_TOTAL_MAX = 6000
EMBEDS_TOTAL_MAX = 6000  # summed over every embed of one message
EMBEDS_MAX = 10


@dataclass(frozen=True)
class Upload:
    """A file attached to a slash command; `size` is what Discord reports (by default, the bytes' length)."""

    filename: str
    data: bytes
    size: int | None = None
    content_type: str | None = None


class FakeCdn:
    """Discord's CDN: serves attachments' bytes by URL and remembers what was downloaded."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.fetched: list[str] = []

    def publish(self, upload: Upload) -> dict:
        """Store the bytes and return the attachment payload an interaction's `resolved` carries."""
        attachment_id = str(next(_ids))
        url = f"https://cdn.discordapp.com/attachments/200/{attachment_id}/{upload.filename}"
        self.files[url] = upload.data
        payload = {"id": attachment_id, "filename": upload.filename, "url": url, "proxy_url": url,
                   "size": len(upload.data) if upload.size is None else upload.size}
        if upload.content_type:
            payload["content_type"] = upload.content_type
        return payload

    async def get_from_cdn(self, url: str) -> bytes:
        self.fetched.append(url)
        if url not in self.files:
            raise http_error(404, 0, "Not Found")
        return self.files[url]


CDN = FakeCdn()


@dataclass
class _HttpResponse:
    status: int
    reason: str


def http_error(status: int, code: int, message: str, errors: dict | None = None) -> discord.HTTPException:
    """The exception discord.py raises for an error status from Discord."""
    kind = {400: discord.HTTPException, 403: discord.Forbidden, 404: discord.NotFound}[status]
    reason = {400: "Bad Request", 403: "Forbidden", 404: "Not Found"}[status]
    return kind(_HttpResponse(status, reason), {"code": code, "message": message, "errors": errors or {}})


def check_payload(content: str | None, embeds: list[dict]) -> None:
    """Raise Discord's 400 "Invalid Form Body" if a message breaks a length limit or is empty."""
    problems = {}
    if content is not None and len(content) > MESSAGE_MAX:
        problems["content"] = f"Must be {MESSAGE_MAX} or fewer in length."
    if len(embeds) > EMBEDS_MAX:
        problems["embeds"] = f"Must be {EMBEDS_MAX} or fewer in length."
    total = 0
    for e, embed in enumerate(embeds):
        texts = {
            "title": (embed.get("title") or "", TITLE_MAX),
            "description": (embed.get("description") or "", DESCRIPTION_MAX),
            "footer.text": ((embed.get("footer") or {}).get("text") or "", FOOTER_MAX),
            "author.name": ((embed.get("author") or {}).get("name") or "", AUTHOR_NAME_MAX),
        }
        fields = embed.get("fields") or []
        if len(fields) > FIELDS_MAX:
            problems[f"embeds.{e}.fields"] = f"Must be {FIELDS_MAX} or fewer in length."
        for f, item in enumerate(fields):
            for key, limit in (("name", FIELD_NAME_MAX), ("value", FIELD_VALUE_MAX)):
                text = str(item.get(key) or "")
                if not text.strip():
                    problems[f"embeds.{e}.fields.{f}.{key}"] = "This field is required"
                texts[f"fields.{f}.{key}"] = (text, limit)
        for key, (text, limit) in texts.items():
            if len(text) > limit:
                problems[f"embeds.{e}.{key}"] = f"Must be {limit} or fewer in length."
            total += len(text)
    if total > EMBEDS_TOTAL_MAX:
        problems["embeds"] = f"Embed size exceeds maximum size of {EMBEDS_TOTAL_MAX}"
    if not (content or embeds):
        raise http_error(400, 50006, "Cannot send an empty message")
    if problems:
        raise http_error(400, 50035, "Invalid Form Body", {key: {"_errors": [{"message": why}]} for key, why in problems.items()})


def check_embed(embed: discord.Embed) -> None:
    """Raise like Discord would for an embed sent alone."""
    check_payload(None, [embed.to_dict()])


def _embeds(embed, embeds) -> list[dict]:
    chosen = [embed] if embed not in (None, discord.utils.MISSING) else list(embeds or [])
    return [e.to_dict() for e in chosen if e is not None]


def _content(content) -> str | None:
    return None if content in (None, discord.utils.MISSING) else str(content)


@dataclass
class Sent:
    """A message as Discord would show it; `ephemeral` is what Discord did, `asked_ephemeral` what the bot asked."""

    content: str | None = None
    embed: discord.Embed | None = None
    view: object = None
    ephemeral: bool = False
    asked_ephemeral: bool = False
    id: int = field(default_factory=lambda: next(_ids))

    @property
    def text(self) -> str:
        """Everything a reader sees, for assertions about what leaks."""
        parts = [self.content or ""]
        if self.embed is not None:
            data = self.embed.to_dict()
            parts += [data.get("title", ""), data.get("description", ""), (data.get("footer") or {}).get("text", "")]
            parts += [f"{item['name']} {item['value']}" for item in data.get("fields", [])]
        return "\n".join(parts)


class FakeResponse:
    """`interaction.response`: exactly one initial response."""

    def __init__(self, interaction: FakeInteraction) -> None:
        self._interaction = interaction
        self.deferred: dict | None = None
        self.sent: list[Sent] = []
        self.choices: list | None = None

    def is_done(self) -> bool:
        return self.deferred is not None or bool(self.sent) or self.choices is not None

    def _claim(self) -> None:
        if self.is_done():
            raise discord.InteractionResponded(self._interaction)

    async def defer(self, *, ephemeral: bool = False, thinking: bool = False) -> None:
        self._claim()
        self.deferred = {"ephemeral": ephemeral, "thinking": thinking}
        placeholder = Sent("*Verbatim is thinking…*", ephemeral=ephemeral, asked_ephemeral=ephemeral)
        self._interaction.original = placeholder
        self._interaction.placeholder_open = True

    async def send_message(self, content=None, *, embed=None, embeds=None, view=discord.utils.MISSING,
                           ephemeral=False, **_) -> None:
        check_payload(_content(content), _embeds(embed, embeds))
        self._claim()
        message = Sent(_content(content), embed, None if view is discord.utils.MISSING else view, ephemeral, ephemeral)
        self.sent.append(message)
        self._interaction.original = message

    async def autocomplete(self, choices) -> None:
        self._claim()
        if len(choices) > 25:
            raise http_error(400, 50035, "Invalid Form Body", {"choices": "Must be 25 or fewer in length."})
        self.choices = list(choices)

    async def edit_message(self, **_) -> None:
        self._claim()
        self.sent.append(Sent("(message edited)"))

    async def send_modal(self, modal) -> None:
        self._claim()
        self.sent.append(Sent("(modal)"))


class FakeFollowup:
    """`interaction.followup`: needs an initial response; the first one after a defer resolves its placeholder."""

    def __init__(self, interaction: FakeInteraction) -> None:
        self._interaction = interaction
        self.sent: list[Sent] = []

    async def send(self, content=None, *, embed=None, embeds=None, view=discord.utils.MISSING, ephemeral=False,
                   wait=False, **_) -> Sent:
        interaction = self._interaction
        check_payload(_content(content), _embeds(embed, embeds))
        if not interaction.response.is_done():
            raise http_error(404, 10015, "Unknown Webhook")
        resolves_placeholder = interaction.placeholder_open
        # Discord ignores the flag on the placeholder: it keeps the defer's visibility.
        shown_ephemeral = interaction.response.deferred["ephemeral"] if resolves_placeholder else ephemeral
        message = Sent(_content(content), embed, None if view is discord.utils.MISSING else view,
                       shown_ephemeral, ephemeral)
        if resolves_placeholder:
            interaction.original, interaction.placeholder_open = message, False
        self.sent.append(message)
        return message


def channel_payload(channel_id: int, guild_id: int | None, thread_of: int | None = None) -> dict:
    """The partial channel an interaction carries: a text channel, or a public thread of `thread_of`."""
    if guild_id is None:
        return {"id": str(channel_id), "type": 1, "recipients": []}
    channel = {"id": str(channel_id), "guild_id": str(guild_id), "name": f"channel-{channel_id}", "position": 0,
               "permission_overwrites": [], "nsfw": False, "type": 0, "parent_id": None}
    if thread_of is not None:
        channel.update(type=11, parent_id=str(thread_of), owner_id="1", message_count=1, member_count=1,
                       rate_limit_per_user=0, thread_metadata={
                           "archived": False, "auto_archive_duration": 1440, "locked": False,
                           "archive_timestamp": "2026-01-01T00:00:00+00:00"})
    return channel


class FakeInteraction(discord.Interaction):
    """A slash-command (or autocomplete) interaction built from a raw payload; `guild_id=None` is a DM.

    It comes from `channel_id` (a thread of `thread_of`, if given) and its member holds `role_ids`,
    as Discord sends them: the partial channel object and the member's role ids.
    """

    def __init__(self, client: discord.Client, command: str, options: dict, *, user_id: int = 42,
                 permissions: discord.Permissions | None = None, autocomplete_focus: str | None = None,
                 guild_id: int | None = 100, channel_id: int = 200, thread_of: int | None = None,
                 role_ids: tuple[int, ...] = ()) -> None:
        option_payloads, attachments = [], {}
        for name, value in options.items():
            if isinstance(value, Upload):
                attachment = CDN.publish(value)
                attachments[attachment["id"]] = attachment
                option_payloads.append({"type": 11, "name": name, "value": attachment["id"]})
                continue
            kind = 4 if isinstance(value, int) else 3
            payload = {"type": kind, "name": name, "value": value}
            if name == autocomplete_focus:
                payload["focused"] = True
            option_payloads.append(payload)
        user = {"id": str(user_id), "username": f"user{user_id}", "discriminator": "0", "avatar": None}
        data = {
            "id": str(next(_ids)), "application_id": "1", "token": "token", "version": 1,
            "attachment_size_limit": 104_857_600, "authorizing_integration_owners": {},
            "context": 0 if guild_id is not None else 1,
            "type": 4 if autocomplete_focus else 2,
            "channel_id": str(channel_id),
            "channel": channel_payload(channel_id, guild_id, thread_of),
            "app_permissions": str(discord.Permissions.all().value),
            "data": {"type": 1, "name": command, "id": str(next(_ids)), "options": option_payloads,
                     "resolved": {"attachments": attachments}},
        }
        if guild_id is not None:
            data["guild_id"] = str(guild_id)
            data["member"] = {
                "user": user, "roles": [str(role) for role in role_ids], "joined_at": "2024-01-01T00:00:00+00:00", "deaf": False, "mute": False,
                "flags": 0, "permissions": str((permissions or discord.Permissions.none()).value),
            }
        else:
            data["user"] = user
        super().__init__(data=data, state=client._connection)
        self._cs_response = FakeResponse(self)
        self._cs_followup = FakeFollowup(self)
        self.original: Sent | None = None
        self.placeholder_open = False
        self.edits: list[str | None] = []

    @property
    def choices(self) -> list:
        return self.response.choices or []

    async def edit_original_response(self, *, content=discord.utils.MISSING, embed=discord.utils.MISSING,
                                     embeds=discord.utils.MISSING, view=discord.utils.MISSING, **_) -> Sent:
        if not self.response.is_done() or self.original is None:
            raise http_error(404, 10008, "Unknown Message")
        original = self.original
        new_content = original.content if content is discord.utils.MISSING else _content(content)
        new_embed = original.embed if embed is discord.utils.MISSING else embed
        check_payload(new_content, [] if new_embed is None else [new_embed.to_dict()])
        original.content, original.embed = new_content, new_embed
        if view is not discord.utils.MISSING:
            original.view = view
        self.placeholder_open = False  # an edit resolves the "thinking…" placeholder too
        self.edits.append(new_content)
        return original

    @property
    def all_sent(self) -> list[Sent]:
        return self.response.sent + self.followup.sent

    @property
    def shown(self) -> list[Sent]:
        """Every message of this interaction as it stands now (the original, edited, first)."""
        others = [m for m in self.all_sent if m is not self.original]
        return ([self.original] if self.original is not None else []) + others

    @property
    def public(self) -> list[Sent]:
        """What everyone in the channel sees."""
        return [message for message in self.shown if not message.ephemeral]

    @property
    def private(self) -> list[Sent]:
        """What only the user sees."""
        return [message for message in self.shown if message.ephemeral]


async def dispatch(bot, interaction: FakeInteraction) -> FakeInteraction:
    """Run an interaction through the bot's tree: parsing, checks, cooldowns, error handling."""
    await bot.tree._call(interaction)
    return interaction


def _enforce_limits(http) -> None:
    # dpytest does not check lengths; Discord refuses an oversized message with a 400.
    original = http.send_message

    async def send_message(channel_id, *, params):
        channel = sys._getframe(1).f_locals.get("channel")  # noqa: F841 -- dpytest reads its caller's `channel`
        payload = params.payload or {}
        check_payload(payload.get("content"), payload.get("embeds") or [])
        return await original(channel_id, params=params)

    http.send_message = send_message


async def offline(client: discord.Client, guilds: int = 1) -> discord.Client:
    """Make a constructed client usable without a gateway: a fake user, guilds and a channel in each (dpytest)."""
    import asyncio

    import discord.ext.test as dpytest

    await client._async_setup_hook()  # what login() does first: binds the client to this loop
    # dpytest keeps its fake members in the member cache, which needs the members intent (test-only).
    client._connection._intents.members = True
    client._connection.member_cache_flags = discord.MemberCacheFlags.from_intents(client._connection._intents)
    dpytest.configure(client, guilds=guilds)
    client.allowed_mentions = discord.AllowedMentions.none()  # dpytest's state starts without ours
    client._connection.loop = asyncio.get_running_loop()  # for typing(), which dpytest's state lacks
    _enforce_limits(client.http)
    client.http.get_from_cdn = client._connection.http.get_from_cdn = CDN.get_from_cdn  # dpytest's reads files
    return client


# Messages, channels and threads, for mentions and follow-ups (dpytest has no threads or replies).
# Discord's rules modelled: a thread opened on a message takes the message's id; its name is 1-100
# characters; a message starts at most one thread, and never one inside a thread; payloads as above.
THREAD_NAME_MAX = 100


@dataclass
class FakeUser:
    id: int
    name: str = "someone"
    bot: bool = False


class FakeChannel:
    """A server text channel (or, with `parent`, a public thread) that records what is sent in it."""

    def __init__(self, guild, channel_id: int | None = None, *, parent: FakeChannel | None = None,
                 name: str = "general", can_open_threads: bool = True) -> None:
        self.id = channel_id if channel_id is not None else next(_ids)
        self.guild, self.parent, self.name = guild, parent, name
        self.type = discord.ChannelType.public_thread if parent else discord.ChannelType.text
        self.can_open_threads = can_open_threads
        self.messages: list[FakeMessage] = []
        self.threads: list[FakeChannel] = []

    def permissions_for(self, member) -> discord.Permissions:
        return discord.Permissions(send_messages=True, create_public_threads=self.can_open_threads)

    def typing(self):
        from contextlib import asynccontextmanager

        @asynccontextmanager
        async def typing():
            yield

        return typing()

    def post(self, author: FakeUser, content: str = "", *, embed=None, view=None, reference=None) -> FakeMessage:
        check_payload(_content(content) or None, _embeds(embed, None))
        message = FakeMessage(self, author, content or "", embed=embed, view=view, reference=reference)
        self.messages.append(message)
        return message

    async def send(self, content=None, *, embed=None, view=discord.utils.MISSING, **_) -> FakeMessage:
        return self.post(self.guild.me, content, embed=embed, view=None if view is discord.utils.MISSING else view)

    def say(self, author: FakeUser, content: str, *, reply_to: FakeMessage | None = None) -> FakeMessage:
        """A member's message as the bot receives it (without the message-content intent, `content` is ""
        unless it mentions the bot)."""
        message = FakeMessage(self, author, content, reference=reply_to.id if reply_to else None)
        self.messages.append(message)
        return message


class FakeMessage:
    """A message in a `FakeChannel`; `reference` is the id of the message it replies to."""

    def __init__(self, channel: FakeChannel, author: FakeUser, content: str, *, embed=None, view=None,
                 reference: int | None = None) -> None:
        self.id, self.channel, self.author, self.content = next(_ids), channel, author, content
        self.guild = channel.guild
        self.embed, self.view = embed, view
        self.reference = discord.MessageReference(message_id=reference, channel_id=channel.id) if reference else None
        self.thread: FakeChannel | None = None

    async def reply(self, content=None, *, embed=None, view=discord.utils.MISSING, mention_author=None, **_):
        return self.channel.post(self.guild.me, content, embed=embed,
                                 view=None if view is discord.utils.MISSING else view, reference=self.id)

    async def create_thread(self, *, name: str, **_) -> FakeChannel:
        if self.channel.parent is not None:
            raise http_error(400, 50024, "Cannot execute action on this channel type")
        if self.thread is not None:
            raise http_error(400, 160004, "A thread has already been created for this message")
        if not 1 <= len(name) <= THREAD_NAME_MAX:
            raise http_error(400, 50035, "Invalid Form Body",
                             {"name": {"_errors": [{"message": f"Must be between 1 and {THREAD_NAME_MAX} in length."}]}})
        if not self.channel.can_open_threads:
            raise http_error(403, 50013, "Missing Permissions")
        self.thread = FakeChannel(self.guild, self.id, parent=self.channel, name=name)
        self.channel.threads.append(self.thread)
        return self.thread


class FakeGuildWithMe:
    """The server a `FakeChannel` is in; `me` is the bot's member."""

    def __init__(self, guild_id: int, me: FakeUser) -> None:
        self.id, self.me = guild_id, me
