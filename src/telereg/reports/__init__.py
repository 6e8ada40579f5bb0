"""Reports: HTML and PDF renderings of the domains' report content (CJK fonts embedded)."""
