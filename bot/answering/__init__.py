"""Answering: retrieval's candidates ranked, selected, refused or quoted with their citations."""
