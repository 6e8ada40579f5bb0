"""Build-out monitoring: 5G and gigabit coverage, corridors, key places, targets."""
