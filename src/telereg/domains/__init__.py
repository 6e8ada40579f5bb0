"""One vertical slice per area of the mission; a domain never imports another."""
