"""Event logs: the canonical schema, its readers, and the OpenAI export importer."""
