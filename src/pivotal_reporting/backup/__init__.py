"""``backup`` and ``restore``: PostgreSQL's own pg_dump/pg_restore with a checked manifest."""
