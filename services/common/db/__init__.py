"""The relational database: engine, tables and Alembic migrations."""
