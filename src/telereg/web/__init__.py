"""Server-rendered web UI (Jinja2 + HTMX + ECharts), Chinese by default."""
