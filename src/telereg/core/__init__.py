"""Core services: settings, errors, state DB, engine, auth, audit, privacy, i18n."""
