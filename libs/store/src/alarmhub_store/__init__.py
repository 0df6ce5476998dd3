"""PostgreSQL schema (alembic, one branch per area on top of ``0001_base``) and its application."""

from .migrate import ensure_database, migrate, migrate_sync, sqlalchemy_url

__all__ = ["ensure_database", "migrate", "migrate_sync", "sqlalchemy_url"]
