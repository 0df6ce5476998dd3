"""Fixtures that run the real services as OS processes on ephemeral ports, isolated by topic prefix."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from alarmhub_devstack.testing import ServiceProcess, service_env

DEV_TOKEN = "e2e-city-admin"


@dataclass
class Pipeline:
    dispatch: ServiceProcess
    triage: ServiceProcess
    contactid: ServiceProcess
    env: dict[str, str]

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.dispatch.ports['ALARMHUB_HTTP_PORT']}"

    @property
    def dc09_port(self) -> int:
        return self.contactid.ports["ALARMHUB_DC09_PORT"]

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {DEV_TOKEN}"}


@pytest.fixture
def pipeline(stack: Any, topic_prefix: str) -> Iterator[Pipeline]:
    env = service_env(stack, topic_prefix, ALARMHUB_DEV_TOKEN=DEV_TOKEN, ALARMHUB_DEV_MODE="1")
    dispatch = ServiceProcess.create("alarmhub_dispatch", env, ("ALARMHUB_HTTP_PORT",))
    triage = ServiceProcess.create("alarmhub_triage", env)
    contactid = ServiceProcess.create("alarmhub_ingest_contactid", env, ("ALARMHUB_DC09_PORT",))
    pipe = Pipeline(dispatch, triage, contactid, env)
    try:
        for svc in (dispatch, triage, contactid):
            svc.start(wait_ready=False)  # they import and join their groups in parallel
        for svc in (dispatch, triage, contactid):
            svc.wait_ready()
        yield pipe
    finally:
        # a test may replace a process (crash and restart): stop what the pipeline holds now
        for svc in (pipe.contactid, pipe.triage, pipe.dispatch):
            svc.stop()
