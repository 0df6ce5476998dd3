"""One real DC-09 panic through all services: ingest → alarms.raw → triage → alarms.triaged → dispatch.

Fails if any service in the path is broken: the assertion is on the incident the API lists and the
SSE stream pushes, with the station the demo geography routes the account's site to.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

import httpx
from alarmhub_sim import dc09
from alarmhub_sim.sites import Site

# The site lies in Futian (福田区), well inside the district.
SITE = Site(
    line="7",
    account="4321",
    company="e2e-security",
    name="E2E 银行网点",
    address="福田区 e2e",
    lat=22.5410,
    lon=114.0550,
    district="440304",
)


async def _register(client: httpx.AsyncClient, site: Site) -> None:
    r = await client.post("/api/v1/registry/accounts", json=site.registry_record())
    assert r.status_code in (200, 201), r.text


async def _incidents(client: httpx.AsyncClient, since: str) -> list[dict[str, Any]]:
    # the test database is shared by the session: look only at what this test caused
    r = await client.get("/api/v1/incidents", params={"since": since})
    assert r.status_code == 200, r.text
    body = r.json()
    return body["items"] if isinstance(body, dict) else body


async def test_panic_frame_becomes_a_routed_incident_on_api_and_stream(pipeline: Any) -> None:
    async with httpx.AsyncClient(base_url=pipeline.api, headers=pipeline.headers(), timeout=10) as client:
        await _register(client, SITE)
        stream_lines: list[str] = []

        async def read_stream() -> None:
            async with client.stream("GET", "/api/v1/stream", timeout=30) as resp:
                assert resp.status_code == 200
                async for line in resp.aiter_lines():
                    stream_lines.append(line)
                    if line.startswith("data:") and "4321" in line:
                        return

        reader = asyncio.create_task(read_stream())
        await asyncio.sleep(0.5)  # the stream is open before the alarm is sent

        since = datetime.now(UTC).isoformat()
        t0 = time.monotonic()
        reply = await dc09.send_one("127.0.0.1", pipeline.dc09_port, SITE, "1", "120", "000")
        assert reply == "ACK"

        incident = None
        deadline = time.monotonic() + 20
        while incident is None and time.monotonic() < deadline:
            for inc in await _incidents(client, since):
                # this pipeline's dispatch escalates earlier tests' open incidents too: match our site
                if inc.get("kind") == "panic" and inc["source_device_id"] == SITE.device_id:
                    incident = inc
            if incident is None:
                await asyncio.sleep(0.05)
        latency = time.monotonic() - t0
        assert incident is not None, "the panic never became an incident"
        print(f"\nDC-09 panic → incident listed by the API in {latency * 1000:.0f} ms")

        assert incident["decision"] == "dispatch"
        assert incident["district"] == "440304"
        assert incident["station"] and str(incident["station"]).startswith("440304")
        assert incident["status"] in ("routed", "opened", "escalated")
        assert 1 <= incident["priority"] <= 2
        assert incident["reasons"], "a decision carries its reasons"

        detail = (await client.get(f"/api/v1/incidents/{incident['id']}")).json()
        event = detail["events"][0]
        event = event.get("event", event)
        assert event["source"]["device_id"] == "L7#4321"
        assert event["code"] == "E120"
        assert event["location"]["source"] == "registry"
        assert detail["timeline"], "the lifecycle is recorded"

        await asyncio.wait_for(reader, 10)
        data = [json.loads(line[5:]) for line in stream_lines if line.startswith("data:")]
        assert any(incident["id"] in json.dumps(d) for d in data)
