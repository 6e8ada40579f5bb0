"""Cases: actionable items that move through a workflow and are handed over."""
