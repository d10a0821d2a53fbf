"""Packaged presets and price tables (TOML), with their sources."""
