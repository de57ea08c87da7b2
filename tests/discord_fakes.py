"""Offline Discord: real interaction payloads dispatched through the bot's real CommandTree.

Only the network edge is faked: `interaction.response`, `interaction.followup`
and `edit_original_response` record what the bot would have sent.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import discord

_ids = itertools.count(1000)


@dataclass
class Sent:
    content: str | None = None
    embed: discord.Embed | None = None
    view: object = None
    ephemeral: bool = False
    id: int = field(default_factory=lambda: next(_ids))


class FakeResponse:
    def __init__(self) -> None:
        self.deferred: dict | None = None
        self.sent: list[Sent] = []

    def is_done(self) -> bool:
        return self.deferred is not None or bool(self.sent)

    async def defer(self, *, ephemeral: bool = False, thinking: bool = False) -> None:
        self.deferred = {"ephemeral": ephemeral, "thinking": thinking}

    async def send_message(self, content=None, *, embed=None, view=discord.utils.MISSING, ephemeral=False, **_) -> None:
        self.sent.append(Sent(content, embed, None if view is discord.utils.MISSING else view, ephemeral))


class FakeFollowup:
    def __init__(self) -> None:
        self.sent: list[Sent] = []

    async def send(self, content=None, *, embed=None, view=discord.utils.MISSING, ephemeral=False, wait=False, **_) -> Sent:
        message = Sent(content, embed, None if view is discord.utils.MISSING else view, ephemeral)
        self.sent.append(message)
        return message


class FakeInteraction(discord.Interaction):
    """A slash-command (or autocomplete) interaction built from a raw payload."""

    def __init__(self, client: discord.Client, command: str, options: dict, *, user_id: int = 42,
                 permissions: discord.Permissions | None = None, autocomplete_focus: str | None = None) -> None:
        option_payloads = []
        for name, value in options.items():
            kind = 4 if isinstance(value, int) else 3
            payload = {"type": kind, "name": name, "value": value}
            if name == autocomplete_focus:
                payload["focused"] = True
            option_payloads.append(payload)
        data = {
            "id": str(next(_ids)), "application_id": "1", "token": "token", "version": 1,
            "attachment_size_limit": 8_000_000, "authorizing_integration_owners": {}, "context": 0,
            "type": 4 if autocomplete_focus else 2,
            "guild_id": "100", "channel_id": "200",
            "member": {
                "user": {"id": str(user_id), "username": f"user{user_id}", "discriminator": "0", "avatar": None},
                "roles": [], "joined_at": "2024-01-01T00:00:00+00:00", "deaf": False, "mute": False, "flags": 0,
                "permissions": str((permissions or discord.Permissions.none()).value),
            },
            "app_permissions": str(discord.Permissions.all().value),
            "data": {"type": 1, "name": command, "id": str(next(_ids)), "options": option_payloads},
        }
        super().__init__(data=data, state=client._connection)
        self._cs_response = FakeResponse()
        self._cs_followup = FakeFollowup()
        self.edits: list[str] = []
        self.choices: list = []

    async def edit_original_response(self, *, content=None, **_) -> None:
        self.edits.append(content)

    @property
    def all_sent(self) -> list[Sent]:
        return self.response.sent + self.followup.sent


async def dispatch(bot, interaction: FakeInteraction) -> FakeInteraction:
    """Run an interaction through the bot's tree: parsing, checks, cooldowns, error handling."""
    if interaction.type is discord.InteractionType.autocomplete:
        async def record(choices):
            interaction.choices = choices
        interaction.response.autocomplete = record
    await bot.tree._call(interaction)
    return interaction


async def offline(client: discord.Client) -> discord.Client:
    """Make a constructed client usable without a gateway: a fake user, guild and channel (dpytest)."""
    import asyncio

    import discord.ext.test as dpytest

    await client._async_setup_hook()  # what login() does first: binds the client to this loop
    # dpytest keeps its fake members in the member cache, which needs the members intent (test-only).
    client._connection._intents.members = True
    client._connection.member_cache_flags = discord.MemberCacheFlags.from_intents(client._connection._intents)
    dpytest.configure(client)
    client.allowed_mentions = discord.AllowedMentions.none()  # dpytest's state starts without ours
    client._connection.loop = asyncio.get_running_loop()  # for typing(), which dpytest's state lacks
    return client
