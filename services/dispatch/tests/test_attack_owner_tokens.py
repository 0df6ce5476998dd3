"""Attack: vehicle-owner tokens for someone else's car (docs/security.md, "Tokens").

Before: any supervisor could mint a 90-day ``vehicle_owner`` token for any registered vehicle, naming any
user (the token reports the car stolen, arms it and sees its incidents). Now the vehicles must be
registered to the person the token is for, and in the minting supervisor's unit (the station responsible).
"""

from __future__ import annotations

import uuid

import httpx
from alarmhub_dispatch.app import DispatchApp

from .test_attack_registry import _mint, _two_stations_in_two_districts


async def test_owner_tokens_only_for_the_owners_vehicles_by_the_responsible_unit(
    dispatch: tuple[DispatchApp, str],
) -> None:
    app, token = dispatch
    mine, theirs = _two_stations_in_two_districts(app)
    car = "0139" + uuid.uuid4().hex[:8]
    base = f"http://127.0.0.1:{app.http_port}"
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}) as city:
        r = await city.post(
            "/api/v1/registry/vehicles",
            json={"device_id": car, "protocol": "jt808", "owner": "zhang.san", "unit": theirs},
        )
        assert r.status_code == 201
        sup = await _mint(city, user="sup-owner-test", role="supervisor", unit=mine)
        # the city itself may not mint a token for the car in someone else's name
        thief = await city.post(
            "/api/v1/tokens", json={"user": "li.si", "role": "vehicle_owner", "scope": {"vehicles": [car]}}
        )
        assert thief.status_code == 403
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {sup}"}) as s:
        elsewhere = await s.post(
            "/api/v1/tokens",
            json={"user": "zhang.san", "role": "vehicle_owner", "scope": {"vehicles": [car]}},
        )
        assert elsewhere.status_code == 403  # not the station responsible for the car
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}) as city:
        ok = await city.post(
            "/api/v1/tokens",
            json={"user": "zhang.san", "role": "vehicle_owner", "scope": {"vehicles": [car]}},
        )
        assert ok.status_code == 201
