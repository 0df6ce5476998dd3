"""PostgreSQL schema (alembic, one branch per area on top of ``0001_base``) and its application; the
registry-change listener and the row versions (refresh only what changed) the ingest services share."""

from ._credentials import PASSWORD_SCHEME, hash_password, is_password_hash, verify_password
from ._listen import REGISTRY_CHANNEL, RegistryListener, notice_row, row_notice
from ._versions import RowDiff, RowVersions
from .district_copy import district_publication_sql, publication_name, subscription_sql
from .migrate import ensure_database, migrate, migrate_sync, sqlalchemy_url

__all__ = [
    "PASSWORD_SCHEME",
    "REGISTRY_CHANNEL",
    "RegistryListener",
    "RowDiff",
    "RowVersions",
    "district_publication_sql",
    "ensure_database",
    "hash_password",
    "is_password_hash",
    "migrate",
    "migrate_sync",
    "notice_row",
    "publication_name",
    "row_notice",
    "sqlalchemy_url",
    "subscription_sql",
    "verify_password",
]
