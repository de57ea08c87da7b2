"""The Discord bot: the same answers, in a chat."""
