"""Passages: a Document's text cut into sentence-exact spans and passages, never changing a character."""
