"""The Discord fake keeps Discord's rules, so bot tests that pass on it would pass on Discord."""

import discord
import pytest

from tests.discord_fakes import FakeInteraction, check_embed, check_payload


@pytest.fixture
def client():
    return discord.Client(intents=discord.Intents.none())


def interaction(client):
    return FakeInteraction(client, "ask", {"question": "q"}, guild_id=None)  # a DM: no logged-in user needed


async def test_an_interaction_has_one_initial_response(client):
    deferred = interaction(client)
    await deferred.response.defer(thinking=True)
    with pytest.raises(discord.InteractionResponded):
        await deferred.response.send_message("again")
    answered = interaction(client)
    await answered.response.send_message("once")
    with pytest.raises(discord.InteractionResponded):
        await answered.response.defer()


async def test_the_first_follow_up_after_a_defer_keeps_the_defers_visibility(client):
    public = interaction(client)
    await public.response.defer(thinking=True)
    first = await public.followup.send("meant privately", ephemeral=True)
    second = await public.followup.send("really private", ephemeral=True)
    assert not first.ephemeral and second.ephemeral
    assert [m.content for m in public.public] == ["meant privately"]
    private = interaction(client)
    await private.response.defer(ephemeral=True, thinking=True)
    assert (await private.followup.send("meant publicly")).ephemeral


async def test_an_edit_resolves_the_placeholder_so_the_next_follow_up_may_be_private(client):
    public = interaction(client)
    await public.response.defer(thinking=True)
    await public.edit_original_response(content="Sorry.")
    assert (await public.followup.send("details", ephemeral=True)).ephemeral
    assert [m.content for m in public.public] == ["Sorry."]


async def test_a_follow_up_needs_an_initial_response(client):
    with pytest.raises(discord.NotFound):
        await interaction(client).followup.send("too early")


@pytest.mark.parametrize("embed", [
    discord.Embed(title="t" * 257),
    discord.Embed(description="d" * 4097),
    discord.Embed().add_field(name="n" * 257, value="v"),
    discord.Embed().add_field(name="n", value="v" * 1025),
    discord.Embed().add_field(name="n", value=" "),
    discord.Embed(description="d").set_footer(text="f" * 2049),
    discord.Embed(description="d" * 4000).add_field(name="n", value="v" * 1000).add_field(name="n", value="v" * 1000),
    discord.Embed.from_dict({"fields": [{"name": "n", "value": "v"}] * 26}),
])
async def test_embeds_over_discords_limits_are_refused_with_a_400(client, embed):
    with pytest.raises(discord.HTTPException) as refused:
        check_embed(embed)
    assert refused.value.status == 400
    sender = interaction(client)
    with pytest.raises(discord.HTTPException):
        await sender.response.send_message(embed=embed)
    assert not sender.response.is_done()


def test_messages_over_2000_characters_or_empty_are_refused():
    check_payload("m" * 2000, [])
    for content in ("m" * 2001, None, ""):
        with pytest.raises(discord.HTTPException):
            check_payload(content, [])
