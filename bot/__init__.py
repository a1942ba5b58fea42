"""Composition root: settings, CLI, aiohttp app, channels and the outbox dispatcher."""
