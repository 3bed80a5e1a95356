"""Feeds: fetching (the only httpx user), parsing (pure) and OPML."""
