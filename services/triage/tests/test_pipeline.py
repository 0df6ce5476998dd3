"""Scenario tests of the stages on the real Redis (no Kafka here: the stages know nothing of it)."""

from __future__ import annotations

import asyncio
import uuid

from alarmhub_events import Decision
from alarmhub_triage import Pipeline, TriageState, decision_event_id, load_rules

from .conftest import MakeEvent


async def test_dual_path_duplicates_are_merged(triage: Pipeline, ev: MakeEvent) -> None:
    a = ev("burglary", code="E130", path="primary")
    b = ev("burglary", code="E130", path="secondary", at_s=1.5)
    res = await triage.run([a, b])
    assert [d.event.event_id for d in res.decisions] == [a.event_id]
    assert res.dropped == {"duplicate": 1}
    # the second path arriving in a later batch is a duplicate too
    c = ev("burglary", code="E130", path="secondary", at_s=20)
    res2 = await triage.run([c])
    assert res2.decisions == [] and res2.dropped == {"duplicate": 1}


async def test_the_same_signal_after_its_window_is_new(triage: Pipeline, ev: MakeEvent) -> None:
    res = await triage.run([ev("burglary", code="E130"), ev("burglary", code="E130", at_s=120)])
    assert len(res.decisions) == 2
    assert res.decisions[0].incident_id == res.decisions[1].incident_id


async def test_a_replayed_batch_yields_the_same_incident_and_decision_ids(
    triage: Pipeline, ev: MakeEvent
) -> None:
    batch = [
        ev("burglary", zone="001"),
        ev("burglary", zone="002", at_s=30),
        ev("panic", device="L1#9", zone=None),
    ]
    first = await triage.run(batch)
    again = await triage.run(batch)
    assert [d.event_id for d in again.decisions] == [d.event_id for d in first.decisions]
    assert [d.incident_id for d in again.decisions] == [d.incident_id for d in first.decisions]
    assert [(d.decision, d.score) for d in again.decisions] == [
        (d.decision, d.score) for d in first.decisions
    ]
    assert first.decisions[0].event_id == decision_event_id(batch[0].event_id)


async def test_instances_racing_on_one_incident_agree(triage: Pipeline, ev: MakeEvent) -> None:
    """Two triage instances (two pipelines on the same Redis state) handle copies of one site's signals."""
    state: TriageState = triage._state  # same keys, separate pipeline object = a second instance
    other = Pipeline(state, lambda: triage.holder["rules"])  # type: ignore[attr-defined]
    a = ev("burglary", zone="001", path="primary")
    b = ev("burglary", zone="001", path="secondary", at_s=0.5)
    r1, r2 = await asyncio.gather(triage.run([a]), other.run([b]))
    assert len(r1.decisions) + len(r2.decisions) == 1
    assert r1.dropped.get("duplicate", 0) + r2.dropped.get("duplicate", 0) == 1


async def test_cross_zone_confirmation_raises_the_score(triage: Pipeline, ev: MakeEvent) -> None:
    one = (await triage.run([ev("burglary", zone="003")])).decisions[0]
    two = (await triage.run([ev("burglary", zone="004", at_s=90)])).decisions[0]
    assert two.incident_id == one.incident_id
    assert two.score > one.score
    codes = {r.code for r in two.reasons}
    assert {"cross_zone", "adjacent_zones"} <= codes
    assert one.decision == Decision.VERIFY and two.decision == Decision.DISPATCH


async def test_different_sensing_principles_confirm(triage: Pipeline, ev: MakeEvent) -> None:
    res = await triage.run(
        [
            ev("burglary", zone="001", attributes={"sensor": "pir"}),
            ev("burglary", zone="007", at_s=600, attributes={"sensor": "glass"}),
        ]
    )
    assert "different_principles" in {r.code for r in res.decisions[1].reasons}


async def test_a_second_detector_after_the_confirmation_window_does_not_confirm(
    triage: Pipeline, ev: MakeEvent
) -> None:
    res = await triage.run([ev("burglary", zone="001"), ev("burglary", zone="002", at_s=3000)])
    assert res.decisions[0].incident_id == res.decisions[1].incident_id
    assert "cross_zone" not in {r.code for r in res.decisions[1].reasons}


async def test_cancel_inside_the_abort_window_suppresses(triage: Pipeline, ev: MakeEvent) -> None:
    alarm = (await triage.run([ev("burglary", zone="002")])).decisions[0]
    cancel = (await triage.run([ev("cancel", code="E406", zone="001", at_s=75)])).decisions[0]
    assert cancel.incident_id == alarm.incident_id
    assert cancel.decision == Decision.SUPPRESS
    assert "cancel_in_window" in {r.code for r in cancel.reasons}
    # a later signal of the incident keeps the cancel in view
    later = (await triage.run([ev("burglary", zone="002", code="E131", at_s=200)])).decisions[0]
    assert later.incident_id == alarm.incident_id and later.decision == Decision.SUPPRESS


async def test_an_opening_inside_the_window_suppresses_but_not_after(triage: Pipeline, ev: MakeEvent) -> None:
    res = await triage.run(
        [
            ev("burglary", device="L1#77", zone="002"),
            ev("open_close", device="L1#77", code="E401", zone="003", at_s=60),
        ]
    )
    assert res.decisions[1].decision == Decision.SUPPRESS
    res = await triage.run(
        [
            ev("burglary", device="L1#78", zone="002"),
            ev("open_close", device="L1#78", code="E401", zone="003", at_s=900),
        ]
    )
    assert "cancel_in_window" not in {r.code for r in res.decisions[1].reasons}


async def test_a_cancel_alone_opens_no_incident(triage: Pipeline, ev: MakeEvent) -> None:
    res = await triage.run(
        [ev("cancel", device="L1#55", code="E406"), ev("open_close", device="L1#55", at_s=5)]
    )
    assert res.decisions == [] and res.dropped == {"informational": 2}


async def test_duress_bypasses_everything(triage: Pipeline, ev: MakeEvent) -> None:
    dev = "L1#4242"
    res = await triage.run(
        [
            ev("test", device=dev, code="E607", zone=None),  # test mode
            ev("duress", device=dev, code="E121", zone="005", at_s=10),
            ev("cancel", device=dev, code="E406", zone="005", at_s=30),  # cancelled under duress
        ]
    )
    d = next(x for x in res.decisions if x.event.kind.value == "duress")
    assert d.decision == Decision.DISPATCH and d.priority == 1
    assert {"immediate", "test_mode"} <= {r.code for r in d.reasons}
    assert res.decisions[-1].decision == Decision.DISPATCH  # the cancel updates, but duress still stands


async def test_test_mode_suppresses_a_burglary(triage: Pipeline, ev: MakeEvent) -> None:
    dev = "L1#4343"
    res = await triage.run(
        [
            ev("test", device=dev, code="E607", zone=None),
            ev("burglary", device=dev, zone="001", at_s=60),
            ev("burglary", device=dev, zone="002", at_s=90),
        ]
    )
    assert [d.decision for d in res.decisions] == [Decision.SUPPRESS, Decision.SUPPRESS]


async def test_camera_corroboration_by_radius_and_window(triage: Pipeline, ev: MakeEvent) -> None:
    site = dict(lat=22.5431, lon=114.0579)
    alarm = (await triage.run([ev("burglary", device="L1#600", **site)])).decisions[0]
    # camera 100 m away, 2 min later: joins the site's incident and raises its score
    cam = (
        await triage.run(
            [
                ev(
                    "intrusion",
                    device="34020000001320000001",
                    protocol="gb28181",
                    zone="1",
                    lat=22.5440,
                    lon=114.0579,
                    at_s=120,
                )
            ]
        )
    ).decisions[0]
    assert cam.incident_id == alarm.incident_id
    assert "camera_corroboration" in {r.code for r in cam.reasons}
    assert cam.score > alarm.score
    # a camera 5 km away opens its own incident
    far = (
        await triage.run(
            [ev("intrusion", device="cam-far", protocol="isapi", zone="1", lat=22.59, lon=114.0579, at_s=130)]
        )
    ).decisions[0]
    assert far.incident_id != alarm.incident_id


async def test_camera_before_the_alarm_corroborates_it(triage: Pipeline, ev: MakeEvent) -> None:
    await triage.run([ev("motion", device="cam-7", protocol="onvif", zone="1", lat=22.60, lon=114.10)])
    alarm = (
        await triage.run([ev("burglary", device="L1#601", lat=22.6005, lon=114.1001, at_s=60)])
    ).decisions[0]
    assert "camera_corroboration" in {r.code for r in alarm.reasons}


def _sig(signal: str, **attrs: object) -> dict[str, object]:
    return {"signal": signal, "armed": True, **attrs}


async def test_ignition_while_armed_then_driving_off_is_dispatched(triage: Pipeline, ev: MakeEvent) -> None:
    dev = "013912345678"
    res = await triage.run(
        [
            ev(
                "vehicle_theft",
                device=dev,
                protocol="jt808",
                zone=None,
                code="armed_ignition",
                attributes=_sig("armed_ignition", ignition=True, parked=True, speed_kmh=0.0),
            ),
            ev(
                "vehicle_theft",
                device=dev,
                protocol="jt808",
                zone=None,
                at_s=60,
                code="armed_movement",
                attributes=_sig("armed_movement", ignition=True, parked=False, speed_kmh=40.0, moved_m=420.0),
            ),
        ]
    )
    assert len({d.incident_id for d in res.decisions}) == 1
    first, last = res.decisions
    # one ambiguous signal: ask the owner first
    assert first.decision == Decision.VERIFY
    assert "verify_with_owner" in {r.code for r in first.reasons}
    assert last.decision == Decision.DISPATCH
    assert "vehicle_ignition_then_movement" in {r.code for r in last.reasons}
    assert last.score > first.score


async def test_ignition_then_crawling_below_the_parked_speed_adds_nothing(
    triage: Pipeline, ev: MakeEvent
) -> None:
    dev = "013912345679"
    res = await triage.run(
        [
            ev(
                "vehicle_theft",
                device=dev,
                protocol="jt808",
                zone=None,
                code="armed_ignition",
                attributes=_sig("armed_ignition"),
            ),
            ev(
                "vehicle_theft",
                device=dev,
                protocol="jt808",
                zone=None,
                at_s=60,
                code="armed_movement",
                attributes=_sig("armed_movement", speed_kmh=6.0),
            ),
        ]
    )
    assert "vehicle_ignition_then_movement" not in {r.code for r in res.decisions[-1].reasons}
    assert res.decisions[-1].decision == Decision.VERIFY


async def test_vehicle_theft_patterns(triage: Pipeline, ev: MakeEvent) -> None:
    dev = "013912345680"
    res = await triage.run(
        [
            ev(
                "vibration",
                device=dev,
                protocol="jt808",
                zone=None,
                code="vibration",
                attributes=_sig("vibration"),
            ),
            ev(
                "power_cut",
                device=dev,
                protocol="jt808",
                zone=None,
                at_s=40,
                code="power_cut",
                attributes=_sig("power_cut"),
            ),
            ev(
                "vehicle_theft",
                device=dev,
                protocol="jt808",
                zone=None,
                at_s=200,
                code="parked_displacement",
                attributes=_sig("parked_displacement", ignition=False, speed_kmh=25.0, moved_m=300.0),
            ),
            ev(
                "geofence",
                device=dev,
                protocol="jt808",
                zone=None,
                at_s=300,
                code="geofence_exit",
                attributes=_sig("geofence_exit", speed_kmh=35.0),
            ),
        ]
    )
    assert len({d.incident_id for d in res.decisions}) == 1
    last = res.decisions[-1]
    codes = {r.code for r in last.reasons}
    assert {
        "vehicle_vibration_then_power_cut",
        "vehicle_power_cut_then_movement",
        "vehicle_displacement_then_geofence_exit",
    } <= codes
    assert last.decision == Decision.DISPATCH
    assert res.decisions[0].decision != Decision.DISPATCH  # vibration alone is not enough


async def test_geofence_exit_before_displacement_is_not_the_sequence(triage: Pipeline, ev: MakeEvent) -> None:
    dev = "013912345681"
    res = await triage.run(
        [
            ev(
                "geofence",
                device=dev,
                protocol="jt808",
                zone=None,
                code="geofence_exit",
                attributes=_sig("geofence_exit"),
            ),
            ev(
                "vehicle_theft",
                device=dev,
                protocol="jt808",
                zone=None,
                at_s=60,
                code="parked_displacement",
                attributes=_sig("parked_displacement", speed_kmh=20.0),
            ),
        ]
    )
    assert "vehicle_displacement_then_geofence_exit" not in {r.code for r in res.decisions[-1].reasons}


async def test_implausible_track_lowers_the_score(triage: Pipeline, ev: MakeEvent) -> None:
    res = await triage.run(
        [ev("vehicle_theft", device="T1", protocol="gt06", zone=None, attributes={"speed_kmh": 480.0})]
    )
    assert "implausible_track" in {r.code for r in res.decisions[0].reasons}


async def test_a_swinger_is_throttled_and_reported(triage: Pipeline, ev: MakeEvent) -> None:
    limit = triage.holder["rules"].swinger.limit  # type: ignore[attr-defined]
    batch = []
    for i in range(limit + 5):  # one new + restore every 5 minutes on the same zone
        batch.append(ev("burglary", device="L1#999", zone="009", code="E130", at_s=300 * i))
        batch.append(
            ev("burglary", device="L1#999", zone="009", code="E130", qualifier="restore", at_s=300 * i + 30)
        )
    res = await triage.run(batch)
    reports = [d for d in res.decisions if d.decision == Decision.TROUBLE]
    assert len(reports) == 1 and "swinger" in {r.code for r in reports[0].reasons}
    assert res.dropped["swinger_throttled"] == 4 + 5  # later signals, and every restore from the 5th on
    assert len(res.decisions) == limit * 2 + 1  # the first alarms and restores, then one report
    alarm_incidents = {d.incident_id for d in res.decisions if d.decision != Decision.TROUBLE}
    assert reports[0].incident_id not in alarm_incidents


async def test_supervision_failure_is_trouble_in_its_own_incident(triage: Pipeline, ev: MakeEvent) -> None:
    res = await triage.run(
        [
            ev("burglary", device="L1#31", zone="001"),
            ev("supervision", device="L1#31", code="E350", zone=None, at_s=10),
        ]
    )
    assert res.decisions[1].decision == Decision.TROUBLE
    assert res.decisions[0].incident_id != res.decisions[1].incident_id


async def test_a_burst_in_one_area_becomes_a_major_event(triage: Pipeline, ev: MakeEvent) -> None:
    sites = triage.holder["rules"].area.sites  # type: ignore[attr-defined]
    batch = [
        ev("burglary", device=f"L1#{5000 + i}", lat=23.1201 + i * 0.0003, lon=113.2501, at_s=10 * i)
        for i in range(sites + 2)
    ]
    res = await triage.run(batch)
    flags = [d.major_event for d in res.decisions]
    assert flags[: sites - 1] == [False] * (sites - 1) and all(flags[sites - 1 :])
    assert "area_spike" in {r.code for r in res.decisions[-1].reasons}
    # other areas are not affected
    other = await triage.run([ev("burglary", device="L1#7000", lat=23.30, lon=113.50, at_s=30)])
    assert not other.decisions[0].major_event


async def test_false_alarm_history_lowers_and_genuine_history_raises(triage: Pipeline, ev: MakeEvent) -> None:
    state: TriageState = triage._state
    await state.record_verdicts([(f"inc-f{i}", "L1#800", "f") for i in range(12)])
    await state.record_verdicts([(f"inc-g{i}", "L1#801", "g") for i in range(6)])
    # a verdict replayed from incidents.events counts once
    assert await state.record_verdicts([("inc-g0", "L1#801", "g")]) == 0
    base = (await triage.run([ev("burglary", device="L1#802")])).decisions[0].score
    falsy = (await triage.run([ev("burglary", device="L1#800")])).decisions[0]
    truthy = (await triage.run([ev("burglary", device="L1#801")])).decisions[0]
    assert falsy.score < base < truthy.score
    assert truthy.score - base >= 15 and base - falsy.score >= 3
    assert "device_history" in {r.code for r in falsy.reasons}


async def test_every_decision_explains_itself_in_both_languages(triage: Pipeline, ev: MakeEvent) -> None:
    d = (await triage.run([ev("burglary")])).decisions[0]
    assert d.rule_version == triage.holder["rules"].rule_version  # type: ignore[attr-defined]
    summary = d.reasons[-1]
    assert summary.code == "decision" and "score" in summary.text and "评分" in (summary.text_zh or "")
    assert all(r.text and r.text_zh for r in d.reasons)


async def test_alarms_of_a_walk_test_stay_discounted_after_it_ends(triage: Pipeline, ev: MakeEvent) -> None:
    dev = "L1#4444"
    res = await triage.run(
        [
            ev("test", device=dev, code="E607", zone=None),
            ev("burglary", device=dev, zone="001", at_s=30),
            ev("burglary", device=dev, zone="002", at_s=60),
            ev("test", device=dev, code="R607", zone=None, qualifier="restore", at_s=120),
        ]
    )
    assert [d.decision for d in res.decisions] == [Decision.SUPPRESS] * 3
    # after the test, a new alarm of the same incident is no longer discounted
    later = (await triage.run([ev("burglary", device=dev, zone="003", at_s=600)])).decisions[0]
    assert "test_mode" not in {r.code for r in later.reasons}


async def test_maintenance_window_from_the_rules(triage: Pipeline, ev: MakeEvent) -> None:
    from alarmhub_triage import parse_rules
    from alarmhub_triage.ruleset import DEFAULT_RULES

    text = DEFAULT_RULES.read_text(encoding="utf-8").replace(
        "maintenance: []",
        'maintenance: [{device: "L1#4545", start: "2026-11-25T07:00:00Z", '
        'end: "2026-11-25T09:00:00Z", note: "panel replacement"}]',
    )
    triage.holder["rules"] = parse_rules(text)  # type: ignore[attr-defined]
    res = await triage.run([ev("burglary", device="L1#4545", zone="001"), ev("burglary", device="L1#4546")])
    inside, outside = res.decisions
    assert inside.decision == Decision.SUPPRESS and "maintenance" in {r.code for r in inside.reasons}
    assert "panel replacement" in next(r.text for r in inside.reasons if r.code == "maintenance")
    assert outside.decision == Decision.VERIFY
    assert inside.rule_version != load_rules().rule_version


async def test_restore_and_more_zones_update_the_same_incident(triage: Pipeline, ev: MakeEvent) -> None:
    res = await triage.run(
        [
            ev("burglary", device="L1#4646", zone="001"),
            ev("burglary", device="L1#4646", zone="001", qualifier="restore", at_s=40),
            ev("burglary", device="L1#4646", zone="002", at_s=100),
        ]
    )
    assert len({d.incident_id for d in res.decisions}) == 1
    assert [d.decision for d in res.decisions] == [Decision.VERIFY, Decision.VERIFY, Decision.DISPATCH]


async def test_latest_verdict_per_incident_counts(triage: Pipeline) -> None:
    state: TriageState = triage._state

    async def counts(dev: str) -> tuple[int, int]:
        return (await state.verdicts([dev]))[0]

    assert await state.record_verdicts([("inc-m1", "L1#900", "g"), ("inc-m1", "L1#900", "f")]) == 2
    assert await counts("L1#900") == (0, 1)
    assert await state.record_verdicts([("inc-m1", "L1#900", "f")]) == 0  # replay
    assert await state.record_verdicts([("inc-m1", "L1#900", "n")]) == 1  # closed as a test
    assert await counts("L1#900") == (0, 0)
    assert await state.record_verdicts([("inc-m2", "L1#900", "n")]) == 1
    assert await counts("L1#900") == (0, 0)


async def test_an_older_incident_event_than_the_one_held_is_ignored(triage: Pipeline) -> None:
    """Two dispatch publishers (or a replay) may deliver an incident's events out of order: by ``seq``, a
    verification outcome (seq 5) arriving after the close verdict (seq 9) does not replace it."""
    state: TriageState = triage._state
    dev = f"L1#{uuid.uuid4().hex[:6]}"
    assert await state.record_verdicts([("inc-o1", dev, "f", 9)]) == 1  # closed as a false alarm
    assert await state.record_verdicts([("inc-o1", dev, "g", 5)]) == 0  # the earlier call-back, late
    assert (await state.verdicts([dev]))[0] == (0, 1)
    assert await state.record_verdicts([("inc-o1", dev, "g", 12)]) == 1  # a later event still counts
    assert (await state.verdicts([dev]))[0] == (1, 0)


async def test_encoded_decisions_are_the_models_bytes(triage: Pipeline, ev: MakeEvent) -> None:
    """The service writes decisions without building models: the bytes must be what the model writes."""
    from alarmhub_events import TriagedAlarm

    batch = [
        ev("burglary", device="L1#5151", zone="001", attributes={"sensor": "pir"}, lat=22.5, lon=114.05),
        ev(
            "burglary",
            device="L1#5151",
            zone="002",
            attributes={"sensor": "glass"},
            at_s=40,
            lat=22.5,
            lon=114.05,
        ),
        ev("panic", device="L1#5152", zone=None),
        ev("trouble", device="L1#5153", code="E300"),
        ev("burglary", device="L1#5154", zone="009", code="E130"),
        ev("cancel", device="L1#5154", code="E406", zone="001", at_s=30),
    ]
    raws = [e.to_bytes() for e in batch]
    raws[4] = raws[4].replace(b'","schema"', b'", "schema"')  # not our encoder's bytes: re-encoded
    res = await triage.run(batch, raws)
    encoded = res.encoded()
    assert len(encoded) == len(res.decisions) == 6
    for (key, value), d in zip(encoded, res.decisions, strict=True):
        assert key == str(d.incident_id)
        assert value == d.to_bytes()
        assert TriagedAlarm.model_validate_json(value).event == d.event
    assert {r.code for r in res.decisions[-1].reasons} >= {"cancel_in_window", "decision"}


async def test_test_mode_and_verdicts_share_the_device_hash(triage: Pipeline, ev: MakeEvent) -> None:
    state: TriageState = triage._state
    dev = "L1#950"
    await state.record_verdicts([(f"inc-t{i}", dev, "f") for i in range(12)])
    res = await triage.run(
        [ev("test", device=dev, code="E607", zone=None), ev("burglary", device=dev, zone="001", at_s=60)]
    )
    assert {"test_mode", "device_history"} <= {r.code for r in res.decisions[-1].reasons}
    res = await triage.run(
        [
            ev("test", device=dev, code="R607", zone=None, qualifier="restore", at_s=120),
            ev("burglary", device=dev, zone="002", at_s=4000),
        ]
    )  # a new incident, test mode over
    codes = {r.code for r in res.decisions[-1].reasons}
    assert "device_history" in codes and "test_mode" not in codes


async def test_a_replay_after_the_memo_and_the_open_incident_expired_decides_the_same(
    triage: Pipeline, ev: MakeEvent
) -> None:
    state: TriageState = triage._state
    batch = [
        ev("burglary", device="L1#951", zone="001"),
        ev("burglary", device="L1#951", zone="002", at_s=30),
    ]
    first = await triage.run(batch)
    await state._r.delete(*[f"{state.prefix}ev:{e.event_id}" for e in batch], f"{state.prefix}corr:s:L1#951")
    again = await triage.run(
        batch
    )  # the first event opens its incident again, which still holds both records
    assert [(d.incident_id, d.score, d.decision) for d in again.decisions] == [
        (d.incident_id, d.score, d.decision) for d in first.decisions
    ]
