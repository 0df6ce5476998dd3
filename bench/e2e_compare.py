"""``bench/e2e.py --baseline-python PY --rounds N``: this tree and a baseline tree in one invocation.

The CPU per alarm and the frame → SSE p99 of one ``e2e.py`` run move from run to run on a shared 2-CPU box
(its speed itself swings: the same code has cost 30 % more ten minutes later), so a comparison of two
separate invocations says little. Here each round runs ``e2e.py`` once with this tree's services and once
with the baseline interpreter's (another checkout's ``.venv``), in ABBA order (round 1: this, baseline;
round 2: baseline, this; …) so a drift of the machine falls on both alike. Every run is its own process,
with its own database, topic prefix and ports, and writes its own ``artifacts/bench-e2e-<tree>-<round>.json``.

Before each run the machine is read twice: ``host_loop_s``, the CPU seconds of a fixed pure-Python loop
(5 million additions), how fast it computed just then; and ``host_wake_us``, the CPU µs a process is
charged for one short sleep and its wake-up, which on a VM that halts its idle vCPUs costs tens of µs
(36 µs here on 2026-12-08, against ~4 µs for a whole loopback round trip between two busy processes) and
is paid by every service several times per alarm. Neither catches everything (the services' loopback work
has slowed by half while the loop moved by 10 %), which is why the trees alternate instead of being
measured an hour apart.

The summary (printed, and written to ``artifacts/bench-e2e-compare.json``) gives per run the CPU per alarm
(every process of the platform ÷ alarms: ``all`` and the alarm path alone), the latencies, what was lost
or duplicated, the load generators' CPU and the machine's load; then per tree the medians, and this tree
against the baseline: the change of the median CPU per alarm (the #19 goal: −40 % against round 1) and
each tree's p99 (goal < 300 ms at 400 alarms/s with 5,000 fixes/s).
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MAX_ROUNDS = 5
RUN_TIMEOUT_S = 900.0
STOP_TIMEOUT_S = 120.0  # for a stopped run to stop its services and broker


def host_loop_s() -> float:
    """CPU seconds of 5 million Python additions: the machine's speed just now (bounded: one loop)."""
    t0 = time.process_time()
    x = 0
    for i in range(5_000_000):
        x += i
    return round(time.process_time() - t0, 3)


def host_wake_us(n: int = 2000) -> float:
    """CPU µs this process is charged for one 0.5 ms sleep (bounded: ``n`` sleeps, ~1 s).

    On bare metal a sleep and its wake-up cost a microsecond or two; on a VM whose idle vCPU halts (this
    one: cpuidle-haltpoll with no guest polling) each costs tens of µs of the process's own CPU time. Every
    service of the alarm path sleeps and wakes several times per alarm at these rates, so this moves the
    CPU per alarm of a run.
    """
    t0 = time.process_time()
    for _ in range(n):
        time.sleep(0.0005)
    return round((time.process_time() - t0) / n * 1e6, 1)


def _strip(argv: list[str]) -> list[str]:
    """``argv`` without the rotation's own options (``--baseline-python X``, ``--rounds N``)."""
    out: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
            continue
        if a in ("--baseline-python", "--rounds", "--services-python", "--out"):
            skip = True
            continue
        if a.startswith(("--baseline-python=", "--rounds=", "--services-python=", "--out=")):
            continue
        out.append(a)
    return out


def _loads(r: dict[str, Any]) -> set[str]:
    """The processes of an ``e2e.py`` result that are the bench's own (the load generators, however many
    ``--panel-procs``, and the driver): every sampled process the platform's CPU per alarm did not count."""
    return set(r.get("services", {})) - set(r["cpu_per_alarm"]["counted"])


def _summary(tree: str, k: int, r: dict[str, Any], loop_s: float, wake_us: float) -> dict[str, Any]:
    services, loads = r.get("services", {}), _loads(r)
    return {
        "tree": tree,
        "round": k,
        "host_loop_s": loop_s,
        "host_wake_us": wake_us,
        "cpu_per_alarm_all_ms": r["cpu_per_alarm"]["all_ms"],
        "cpu_per_alarm_path_ms": r["cpu_per_alarm"]["alarm_path_ms"],
        "p50_ms": r["latency_ms"].get("p50"),
        "p99_ms": r["latency_ms"].get("p99"),
        "alarms": r["alarms_sent"],
        "matched": r["incidents_matched"],
        "not_acked": r["not_acked"],
        "lost": r["lost"],
        "duplicated": r["duplicated"],
        "load_cpu_s": round(sum(services[n]["cpu_s"] for n in loads), 2),
        "service_cpu_s": {n: v["cpu_s"] for n, v in services.items() if n not in loads},
        "load_average": [round(x, 1) for x in r["load_average"]],
        "wall": r.get("wall"),
    }


def _median(runs: list[dict[str, Any]], key: str) -> float | None:
    vals = [x[key] for x in runs if x.get(key) is not None]
    return round(statistics.median(vals), 3) if vals else None


def rotate(argv: list[str], baseline_python: str, rounds: int) -> int:
    """Run ``e2e.py`` (``argv`` as given, minus the rotation's options) ABBA for ``rounds`` rounds."""
    if not 1 <= rounds <= MAX_ROUNDS:
        raise SystemExit(f"--rounds: 1 to {MAX_ROUNDS}")
    if not Path(baseline_python).exists():
        raise SystemExit(f"--baseline-python: {baseline_python} does not exist")
    base = [sys.executable, str(ROOT / "bench" / "e2e.py"), *_strip(argv)]
    trees = {"this": sys.executable, "baseline": baseline_python}
    runs: list[dict[str, Any]] = []
    failed: list[str] = []
    for k in range(1, rounds + 1):
        order = ("this", "baseline") if k % 2 else ("baseline", "this")
        for tree in order:
            out = ROOT / "artifacts" / f"bench-e2e-{tree}-{k}.json"
            out.unlink(missing_ok=True)
            loop_s, wake_us = host_loop_s(), host_wake_us()
            cmd = [*base, "--services-python", trees[tree], "--out", str(out)]
            print(f"e2e round {k}, {tree}: {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
            if not _run(cmd):
                failed.append(f"{tree} round {k}: no result in {RUN_TIMEOUT_S:.0f} s")
                continue
            if not out.exists():
                failed.append(f"{tree} round {k}: no result (see its stderr above)")
                continue
            s = _summary(tree, k, json.loads(out.read_text()), loop_s, wake_us)
            runs.append(s)
            print(json.dumps(s), file=sys.stderr, flush=True)
    result = _compare(runs, failed, baseline_python)
    path = ROOT / "artifacts" / "bench-e2e-compare.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0 if not failed and result["goals"]["cpu_cut_met"] and result["goals"]["p99_met"] else 1


def _run(cmd: list[str]) -> bool:
    """One ``e2e.py`` run to its end (True), or stopped after ``RUN_TIMEOUT_S`` (False): SIGTERM, on which it
    stops the services and the broker it started, and killed only if that hangs too."""
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL)
    try:
        proc.wait(RUN_TIMEOUT_S)
        return True
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        return False


def _compare(runs: list[dict[str, Any]], failed: list[str], baseline_python: str) -> dict[str, Any]:
    med: dict[str, dict[str, Any]] = {}
    for tree in ("this", "baseline"):
        mine = [r for r in runs if r["tree"] == tree]
        med[tree] = {
            "runs": len(mine),
            "cpu_per_alarm_all_ms": _median(mine, "cpu_per_alarm_all_ms"),
            "cpu_per_alarm_path_ms": _median(mine, "cpu_per_alarm_path_ms"),
            "p50_ms": _median(mine, "p50_ms"),
            "p99_ms": _median(mine, "p99_ms"),
            "host_loop_s": _median(mine, "host_loop_s"),
            "host_wake_us": _median(mine, "host_wake_us"),
            "lost_or_duplicated": sum(r["lost"] + r["duplicated"] + r["not_acked"] for r in mine),
        }

    def change(key: str) -> float | None:
        a, b = med["this"][key], med["baseline"][key]
        return round(100.0 * (a - b) / b, 1) if a is not None and b else None

    cut = change("cpu_per_alarm_all_ms")
    p99 = med["this"]["p99_ms"]
    return {
        "bench": "e2e_compare",
        "baseline_python": baseline_python,
        "runs": runs,
        "failed": failed,
        "medians": med,
        "this_vs_baseline_pct": {
            "cpu_per_alarm_all": cut,
            "cpu_per_alarm_path": change("cpu_per_alarm_path_ms"),
            "p99": change("p99_ms"),
        },
        "goals": {
            "cpu_cut_met": cut is not None and cut <= -40.0,
            "p99_met": p99 is not None and p99 < 300.0,
            "nothing_lost": not (med["this"]["lost_or_duplicated"] or med["baseline"]["lost_or_duplicated"]),
        },
        "cpus": os.cpu_count(),
        "load_average_end": [round(x, 1) for x in os.getloadavg()],
    }


def wall(r: dict[str, Any]) -> str:
    """Which resource set the pace of one ``e2e.py`` run, from its own figures (as bench/gps.py says it)."""
    cpus = os.cpu_count() or 1
    services, load_procs = r.get("services", {}), _loads(r)
    busy = {n: v["cpu_pct"] for n, v in services.items() if v.get("processes", 1) == 1 and v["cpu_pct"] >= 85}
    loads = {n: p for n, p in busy.items() if n in load_procs}
    if loads:
        return f"load generator: {', '.join(f'{n} {p:.0f} %' for n, p in loads.items())} of a core"
    if busy:
        return "one process CPU-bound: " + ", ".join(f"{n} {p:.0f} % of a core" for n, p in busy.items())
    load = r["load_average"][0]
    if load >= cpus:
        waits = sorted(
            ((v.get("runq_wait_pct", 0.0), n) for n, v in services.items() if n not in load_procs),
            reverse=True,
        )[:3]
        return (
            f"machine CPU: load average {load:.1f} on {cpus} CPUs, no process saturated alone; "
            "waiting for a core: " + ", ".join(f"{n} {w:.0f} % of the time" for w, n in waits)
        )
    return "none found: no process saturated and the machine had a CPU to spare"
