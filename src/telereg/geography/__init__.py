"""Geography the domains share: regions, corridors and key places, shipped and ingested."""
