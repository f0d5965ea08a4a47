"""The hub's signing keys and secrets: generated on first run into the data directory, owner-only."""
