"""Live updates: PostgreSQL NOTIFY fanned out to browsers over Server-Sent Events."""
