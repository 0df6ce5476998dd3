"""An account's zone registry says each detector's sensing principle (issue 20).

ingest-contactid writes ``attributes.sensor`` from ``accounts.zones`` (``{"001": {"name": "hall", "sensor":
"pir"}}``) and triage's different-principles rule reads it; the registry API is where an operator writes
it. Before, ``SiteIn.zones`` was ``dict[str, str]``: a zone with a sensor was a 422, so no account
registered through the API could ever carry one.
"""

from __future__ import annotations

import json
import uuid

import httpx
from alarmhub_dispatch.app import DispatchApp
from alarmhub_dispatch.registry import KINDS


async def test_zones_carry_their_sensor_through_the_api_and_csv(dispatch: tuple[DispatchApp, str]) -> None:
    app, token = dispatch
    acct = f"{uuid.uuid4().int % 0xFFFFFF:06X}"
    acct2 = f"{(uuid.uuid4().int % 0xFFFFFF):06X}"
    base = f"http://127.0.0.1:{app.http_port}/api/v1/registry/accounts"
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=10) as c:
        zones = {
            "001": {"name": "hall", "sensor": "PIR"},
            "002": {"name": "window", "sensor": "glass"},
            "3": "door",
        }
        r = await c.post(
            base, json={"line": "L4", "account": acct, "company": "acme", "site": {"zones": zones}}
        )
        assert r.status_code == 201, r.text
        assert r.json()["site"]["zones"] == {
            "001": {"name": "hall", "sensor": "pir"},
            "002": {"name": "window", "sensor": "glass"},
            "3": "door",
        }

        # a principle the vocabulary does not know is refused, naming the zone
        r = await c.put(
            f"{base}/L4%23{acct}", json={"company": "acme", "site": {"zones": {"001": {"sensor": "laser"}}}}
        )
        assert r.status_code == 422 and "zones" in r.text and "001" in r.text, r.text

        # CSV: the zones column as JSON, in the list form too
        listed = json.dumps([{"zone": "1", "name": "hall", "sensor": "microwave"}]).replace('"', '""')
        csv = f'line,account,company,zones\nL4,{acct2},acme,"{listed}"\n'
        r = await c.post(f"{base}/import", content=csv.encode())
        assert r.status_code == 200 and r.json()["imported"] == 1, r.text
        assert app.dispatcher is not None
        row = await app.dispatcher.store.registry.one(KINDS["accounts"], ("4", acct2))
        assert row is not None and row["zones"] == {"1": {"name": "hall", "sensor": "microwave"}}
        for a in (acct, acct2):
            assert (await c.delete(f"{base}/L4%23{a}")).status_code in (200, 204)
