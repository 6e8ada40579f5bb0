"""The demo scenario: a synthetic province, loaded through the real ingest path."""
