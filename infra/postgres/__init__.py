"""PostgreSQL schema and its migrations."""
