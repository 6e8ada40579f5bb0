"""System-wide services that look across the shared services: status, migrations."""
