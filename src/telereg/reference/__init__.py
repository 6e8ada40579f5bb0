"""Reference data: operators, partner agencies, regions, corridors, key places."""
