"""Pure tests of the item model: deterministic ids and the record kept per incident."""

from __future__ import annotations

import uuid

import pytest
from alarmhub_triage.model import NAMESPACE, Record, uuid5_str

from .conftest import MakeEvent


@pytest.mark.parametrize(
    "name", ["", "incident:0f6c1a52-4d1e-4c3b-9a47-1b2f3c4d5e6f", "decision:" + "x" * 300, "站点"]
)
def test_uuid5_str_is_uuid5(name: str) -> None:
    assert uuid5_str(name) == str(uuid.uuid5(NAMESPACE, name))


def test_a_record_round_trips_through_json(ev: MakeEvent) -> None:
    rec = Record.of(ev("burglary", zone="003", code="E130", attributes={"sensor": "pir", "ignored": 1}))
    back = Record.from_json(rec.to_json())
    assert back == rec and back.attrs == {"sensor": "pir"} and back.principle == "pir"
    cam = Record.of(ev("motion", device="cam", protocol="gb28181", zone="1"))
    assert Record.from_json(cam.to_json()).camera and cam.principle == "video"
