"""An empty database per test (not migrated: ``alarmhub-admin init`` does that) on the test PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from alarmhub_store import sqlalchemy_url
from sqlalchemy import create_engine, text


@pytest.fixture
def empty_db(stack) -> Iterator[str]:  # type: ignore[no-untyped-def]
    base = stack.admin_database_url.rsplit("/", 1)[0]
    name = f"alarmhub_admin_{uuid.uuid4().hex[:8]}"
    yield f"{base}/{name}"
    engine = create_engine(sqlalchemy_url(stack.admin_database_url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()
