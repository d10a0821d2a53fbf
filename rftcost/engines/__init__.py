"""Execution engines beyond in-memory pandas, imported lazily (optional extras)."""
