"""Verbatim's settings: one `Settings` object from defaults, environment and .env."""

from config.settings import Settings, load_settings

__all__ = ["Settings", "load_settings"]
