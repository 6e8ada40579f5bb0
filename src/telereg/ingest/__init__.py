"""Ingest of operators' datasets into the lake, with validation and quarantine."""
