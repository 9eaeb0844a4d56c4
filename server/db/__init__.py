"""Persistence: Piccolo tables, the engine for the configured URL, migrations."""
