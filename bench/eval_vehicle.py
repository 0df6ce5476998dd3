"""Evaluate vehicle theft triage on labelled cases driven through ingest-gps from JT/T 808 frames.

    .venv/bin/python bench/eval_vehicle.py [--per-case 200] [--seed 7] [--protocol jt808|gt06|h02|all] [--json]

The companion of ``bench/eval_triage.py`` for the vehicle anti-theft network. Each case
(``alarmhub_sim.vehicle_cases``: stolen and driven, towed, power cut then moved, the owner driving an
unarmed car, an armed car parked with GPS jitter, SOS, towed and then out of its area) is one vehicle's terminal: its location
reports are encoded as the terminal sends them (JT/T 808 0x0200 by default; GT06 0x22/0x16 or H02 V1 with
``--protocol``) and fed — registration, authentication and all — to ingest-gps's own session of that
protocol (``Jt808Session``, ``Gt06Session``, ``H02Session``: the code the gateway runs), with the vehicle's armed
state in its registry. Whatever alarms the session publishes on ``alarms.raw`` go, in event-time
order and in batches, through triage's real pipeline on the real Redis, with the packaged rules. So the
figures hold only if the two services speak the same vocabulary: a rule that reads an attribute the
gateway never writes scores nothing here.

A case is *dispatched* if any decision on its signals is ``dispatch``, *verified* if one is ``verify``
(and none ``dispatch``). Printed: genuine recall (dispatch) of SOS and of stolen-and-driven (goal 100 %),
of the other theft cases, and false dispatches of the owner driving and of the parked jitter (goal 0).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from alarmhub_events import AlarmEvent, Decision
from alarmhub_sim.vehicle_cases import CASES, PROTOCOLS, VehicleCase, build_case, run_case

T0 = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)


def build(per_case: int, seed: int, protocol: str = "jt808") -> list[tuple[VehicleCase, list[AlarmEvent]]]:
    """``per_case`` vehicles of every case, reported in ``protocol`` (``all``: the tracker protocols in
    turn, vehicle by vehicle)."""
    rng = random.Random(seed)
    out = []
    i = 0
    for name in CASES:
        for _ in range(per_case):
            i += 1
            phone = f"0136{i:08d}"
            lat, lon = 22.52 + rng.uniform(0, 0.1), 113.95 + rng.uniform(0, 0.2)
            case = build_case(name, phone, rng, lat, lon)
            start = T0 + timedelta(seconds=rng.uniform(0, 48 * 3600))
            proto = PROTOCOLS[i % len(PROTOCOLS)] if protocol == "all" else protocol
            out.append((case, run_case(case, start, proto)))
    return out


async def evaluate(
    per_case: int, seed: int, redis_url: str, batch: int, protocol: str = "jt808"
) -> dict[str, Any]:
    from alarmhub_triage import Pipeline, TriageState, load_rules
    from redis.asyncio import Redis

    cases = build(per_case, seed, protocol)
    rules = load_rules()
    r = Redis.from_url(redis_url)
    prefix = f"evalv{uuid.uuid4().hex[:8]}.triage:"
    state = TriageState(r, prefix, ttl_s=int(rules.longest_window_s) + 600)
    pipe = Pipeline(state, lambda: rules)
    owner: dict[uuid.UUID, int] = {}
    events: list[AlarmEvent] = []
    for n, (_case, alarms) in enumerate(cases):
        for e in alarms:
            owner[e.event_id] = n
            events.append(e)
    events.sort(key=lambda e: e.received_at)
    decisions: dict[int, list[str]] = defaultdict(list)
    reasons: dict[int, set[str]] = defaultdict(set)
    try:
        for i in range(0, len(events), batch):
            res = await pipe.run(events[i : i + batch])
            for d in res.decisions:
                n = owner[d.event.event_id]
                decisions[n].append(d.decision.value)
                reasons[n] |= {x.code for x in d.reasons}
    finally:
        keys = [k async for k in r.scan_iter(match=prefix + "*", count=5000)]
        for j in range(0, len(keys), 1000):
            await r.delete(*keys[j : j + 1000])
        await r.aclose()

    per: dict[str, Counter[str]] = defaultdict(Counter)
    codes: dict[str, Counter[str]] = defaultdict(Counter)
    for n, (case, alarms) in enumerate(cases):
        ds = decisions.get(n, [])
        c = per[case.name]
        c["n"] += 1
        c["alarms"] += len(alarms)
        c["with_alarm"] += bool(alarms)
        c["dispatch"] += Decision.DISPATCH.value in ds
        c["verify_only"] += Decision.VERIFY.value in ds and Decision.DISPATCH.value not in ds
        for code in reasons.get(n, ()):
            if code.startswith("vehicle_") or code in ("verify_with_owner", "immediate"):
                codes[case.name][code] += 1

    def pct(a: float, b: float) -> float:
        return round(100.0 * a / b, 2) if b else 100.0

    result: dict[str, Any] = {
        "cases": len(cases),
        "protocol": protocol,
        "signals": len(events),
        "rule_version": rules.rule_version,
        "recall_sos_pct": pct(per["sos"]["dispatch"], per["sos"]["n"]),
        "recall_stolen_driven_pct": pct(per["stolen_driven"]["dispatch"], per["stolen_driven"]["n"]),
        "recall_power_cut_then_moved_pct": pct(
            per["power_cut_then_moved"]["dispatch"], per["power_cut_then_moved"]["n"]
        ),
        "recall_towed_pct": pct(per["towed"]["dispatch"], per["towed"]["n"]),
        "recall_towed_out_of_area_pct": pct(
            per["towed_out_of_area"]["dispatch"], per["towed_out_of_area"]["n"]
        ),
        "towed_dispatch_or_verify_pct": pct(
            per["towed"]["dispatch"] + per["towed"]["verify_only"], per["towed"]["n"]
        ),
        "false_dispatch_owner_driving": per["owner_driving"]["dispatch"],
        "false_dispatch_parked_jitter": per["parked_jitter"]["dispatch"],
        "alarms_owner_driving": per["owner_driving"]["alarms"],
        "alarms_parked_jitter": per["parked_jitter"]["alarms"],
        "per_case": {k: dict(v) for k, v in per.items()},
        "reasons": {k: dict(v) for k, v in codes.items()},
    }
    result["goals_met"] = (
        result["recall_sos_pct"] == 100.0
        and result["recall_stolen_driven_pct"] == 100.0
        and result["false_dispatch_owner_driving"] == 0
        and result["false_dispatch_parked_jitter"] == 0
    )
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-case", type=int, default=200, help="vehicles per case")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument(
        "--protocol",
        choices=(*PROTOCOLS, "all"),
        default="jt808",
        help="the tracker protocol the terminals report in (all: jt808, gt06 and h02 in turn)",
    )
    ap.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    ap.add_argument("--json", action="store_true", help="print one JSON object only")
    args = ap.parse_args()
    res = asyncio.run(
        evaluate(max(1, min(args.per_case, 20_000)), args.seed, args.redis_url, args.batch, args.protocol)
    )
    if args.json:
        print(json.dumps(res, ensure_ascii=False))
        return
    print(
        f"vehicles {res['cases']} ({res['signals']} alarms from ingest-gps, {res['protocol']}), "
        f"rules {res['rule_version']}"
    )
    print(f"{'case':24} {'label':6} {'n':>5} {'alarmed':>8} {'dispatch':>9} {'verify':>7}")
    for name, c in res["per_case"].items():
        print(
            f"{name:24} {CASES[name]:6} {c['n']:>5} {c['with_alarm']:>8} {c['dispatch']:>9} {c['verify_only']:>7}"
        )
    print(f"genuine recall, SOS:                    {res['recall_sos_pct']}%  (goal 100%)")
    print(f"genuine recall, stolen and driven:      {res['recall_stolen_driven_pct']}%  (goal 100%)")
    print(f"genuine recall, power cut then moved:   {res['recall_power_cut_then_moved_pct']}%")
    print(
        f"towed (ignition off): dispatched {res['recall_towed_pct']}%, "
        f"dispatched or owner asked {res['towed_dispatch_or_verify_pct']}%"
    )
    print(
        f"towed, then out of its area: dispatched {res['recall_towed_out_of_area_pct']}%"
        + ("  (H02 has no area alarm: a plain tow there)" if res["protocol"] in ("h02", "all") else "")
    )
    print(
        f"false dispatches: owner driving {res['false_dispatch_owner_driving']}, "
        f"parked jitter {res['false_dispatch_parked_jitter']}  (goal 0; alarms raised: "
        f"{res['alarms_owner_driving']} and {res['alarms_parked_jitter']})"
    )
    for name, cs in res["reasons"].items():
        print(f"  {name}: " + ", ".join(f"{k} {v}" for k, v in sorted(cs.items())))
    print("goals met" if res["goals_met"] else "GOALS NOT MET")


if __name__ == "__main__":
    main()
