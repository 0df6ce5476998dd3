"""Benchmark of the camera ingest service: ISAPI pushes/s and GB/T 28181 alarm MESSAGEs/s on loopback.

Runs the real service (``python -m alarmhub_ingest_camera``) as its own process against the real dev
broker and PostgreSQL (reused if reachable, else started), and — in the same run, with the same load
generator — a bare FastAPI echo endpoint under uvicorn, the ceiling any FastAPI ingest could reach
on this machine. Figures therefore read as "ISAPI ingest reaches X % of a do-nothing endpoint".

    .venv/bin/python bench/camera.py --duration 15 --concurrency 64 --devices 64

- ``echo_requests_per_s``: POSTs of the same ISAPI body answered 200 by the echo app;
- ``isapi_pushes_per_s`` / ``isapi_published_per_s``: pushes answered 200 by the service, and
  ``alarms.raw`` events it published (each push comes from a camera not heard before, so none is
  coalesced, and each costs a registry lookup — a cache miss — as a first event from a camera does);
- ``sip_alarms_per_s`` / ``sip_published_per_s``: alarm MESSAGEs answered 200 by registered
  devices (one outstanding per device, as a UA does), and events published.

The noise gate's flood limit is lifted for the run (it exists to drop exactly this kind of traffic).
Every loop is bounded by ``--duration``; only loopback addresses are used.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

ROOT = Path(__file__).resolve().parents[1]
SIP_PASSWORD = "bench-sip-password"
SERVER_ID, REALM = "34020000002000000001", "3402000000"


def _alert(mac: str, active: bool) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<EventNotificationAlert version="2.0" '
        f'xmlns="http://www.hikvision.com/ver20/XMLSchema">\n<ipAddress>127.0.0.1</ipAddress>\n'
        f"<macAddress>{mac}</macAddress>\n<channelID>1</channelID>\n"
        f"<dateTime>2026-11-25T16:00:00+08:00</dateTime>\n<activePostCount>1</activePostCount>\n"
        f"<eventType>VMD</eventType>\n<eventState>{'active' if active else 'inactive'}</eventState>\n"
        f"<eventDescription>Motion alarm</eventDescription>\n</EventNotificationAlert>\n"
    ).encode()


# ------------------------------------------------------------------------------ processes


def _echo_server(port: int) -> None:
    import uvicorn

    app = FastAPI()

    @app.post("/echo")
    async def echo(request: Request) -> JSONResponse:
        body = await request.body()
        return JSONResponse({"status": "ok", "bytes": len(body)})

    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="off")


def _http_worker(url: str, worker: int, concurrency: int, duration: float, q: Any) -> None:
    import httpx

    async def main() -> dict[str, int]:
        ok = errors = 0
        deadline = time.monotonic() + duration
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(limits=limits, timeout=30.0) as client:

            async def one(i: int) -> None:
                nonlocal ok, errors
                n = 0
                while time.monotonic() < deadline:
                    # a different camera each push, as 200,000 cameras are: every push is news
                    n += 1
                    mac = f"02:{worker:02x}:{i:02x}:{n >> 16 & 255:02x}:{n >> 8 & 255:02x}:{n & 255:02x}"
                    try:
                        r = await client.post(
                            url, content=_alert(mac, True), headers={"Content-Type": "application/xml"}
                        )
                        if r.status_code == 200:
                            ok += 1
                        else:
                            errors += 1
                    except httpx.HTTPError:
                        errors += 1

            await asyncio.gather(*(one(i) for i in range(concurrency)))
        return {"ok": ok, "errors": errors}

    q.put(asyncio.run(main()))


def _sip_worker(port: int, worker: int, devices: int, duration: float, q: Any) -> None:
    sys.path.insert(0, str(ROOT / "tools" / "sim" / "src"))
    from alarmhub_sim.camera import GbDevice, SimCamera

    async def main() -> dict[str, int]:
        ok = errors = registered = 0
        devs = []
        for i in range(devices):
            cam = SimCamera("gb28181", f"440300000013280{worker:01d}{i:04d}", "bench", 22.5, 114.0, "")
            dev = GbDevice(cam, "127.0.0.1", port, server_id=SERVER_ID, realm=REALM, password=SIP_PASSWORD)
            await dev.open()
            try:
                if await dev.register() == 200:
                    registered += 1
                    devs.append(dev)
            except TimeoutError:
                errors += 1
        deadline = time.monotonic() + duration
        from datetime import UTC, datetime

        async def run(dev: Any) -> None:
            nonlocal ok, errors
            while time.monotonic() < deadline:
                try:
                    status = await dev.alarm("intrusion", datetime.now(UTC))
                    ok += status == 200
                    errors += status != 200
                except TimeoutError:
                    errors += 1

        await asyncio.gather(*(run(d) for d in devs))
        for d in devs:
            d.close()
        return {"ok": ok, "errors": errors, "registered": registered}

    q.put(asyncio.run(main()))


def _drive(target: Any, args_for: Any, workers: int, duration: float) -> tuple[list[dict[str, int]], float]:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args_for(w), q)) for w in range(workers)]
    t0 = time.monotonic()
    for p in procs:
        p.start()
    results = [q.get(timeout=duration + 180) for _ in procs]
    elapsed = time.monotonic() - t0
    for p in procs:
        p.join(30)
    return results, elapsed


def _metric(url: str, name: str, **labels: str) -> float:
    text = urllib.request.urlopen(url + "/metrics", timeout=10).read().decode()
    total = 0.0
    for line in text.splitlines():
        if (line.startswith(name + "{") or line.startswith(name + " ")) and all(
            f'{k}="{v}"' in line for k, v in labels.items()
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _published(url: str, protocol: str) -> float:
    return sum(
        _metric(url, "alarmhub_ingest_camera_events_total", protocol=protocol, decision=d)
        for d in ("new", "restore")
    )


def bench(args: argparse.Namespace) -> dict[str, Any]:
    from alarmhub_devstack import BackingServices
    from alarmhub_devstack.testing import (
        ServiceProcess,
        drop_redis_keys,
        free_port,
        new_prefix,
        service_env,
        wait_http,
    )
    from alarmhub_kafka import ensure_topics
    from alarmhub_store import migrate_sync

    backing = BackingServices(
        kafka_bootstrap=os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
        redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        postgres_url=os.environ.get("ALARMHUB_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"),
        state_dir=ROOT / ".devstack" / "test",
    ).start()
    echo = None
    service = None
    prefix = ""
    try:
        database_url = backing.postgres_url.rsplit("/", 1)[0] + "/alarmhub_bench"
        migrate_sync(database_url)
        prefix = "bench" + new_prefix()
        asyncio.run(ensure_topics(backing.kafka_bootstrap, prefix=prefix))

        class _Stack:
            kafka_bootstrap = backing.kafka_bootstrap
            redis_url = backing.redis_url

        _Stack.database_url = database_url  # type: ignore[attr-defined]
        env = service_env(
            _Stack,
            prefix,
            ALARMHUB_LOG_LEVEL="WARNING",
            ALARMHUB_SIP_PASSWORD=SIP_PASSWORD,
            ALARMHUB_CAMERA_FLOOD_BURST="100000000",
            ALARMHUB_CAMERA_HOLD_S="0.000001",
            ALARMHUB_ONVIF_MODE="off",
            ALARMHUB_CAMERA_HOST="127.0.0.1",
            ALARMHUB_SIP_HOST="127.0.0.1",
        )
        service = ServiceProcess.create(
            "alarmhub_ingest_camera", env, port_vars=("ALARMHUB_CAMERA_HTTP_PORT", "ALARMHUB_SIP_PORT")
        )
        service.log_dir = ROOT / "artifacts" / "logs"
        service.start(timeout=120)

        ctx = mp.get_context("spawn")
        echo_port = free_port()
        echo = ctx.Process(target=_echo_server, args=(echo_port,), daemon=True)
        echo.start()
        wait_http_post = f"http://127.0.0.1:{echo_port}/docs"
        wait_http(wait_http_post, 60)

        d, c, w = args.duration, args.concurrency, args.workers
        echo_res, echo_t = _drive(
            _http_worker, lambda i: (f"http://127.0.0.1:{echo_port}/echo", i, c, d), w, d
        )

        health = service.health_url
        http_port = service.ports["ALARMHUB_CAMERA_HTTP_PORT"]
        p0 = _published(health, "isapi")
        isapi_res, isapi_t = _drive(
            _http_worker, lambda i: (f"http://127.0.0.1:{http_port}/events/isapi", i, c, d), w, d
        )
        time.sleep(0.5)
        isapi_pub = _published(health, "isapi") - p0

        s0 = _published(health, "gb28181")
        sip_res, sip_t = _drive(
            _sip_worker, lambda i: (service.ports["ALARMHUB_SIP_PORT"], i, args.devices // w, d), w, d
        )
        time.sleep(0.5)
        sip_pub = _published(health, "gb28181") - s0

        def rate(res: list[dict[str, int]], key: str = "ok") -> float:
            return round(sum(r[key] for r in res) / d)

        echo_rate = rate(echo_res)
        return {
            "bench": "camera_ingest",
            "duration_s": d,
            "http_concurrency": c * w,
            "sip_devices": args.devices,
            "load_processes": w,
            "cpus": os.cpu_count(),
            "echo_requests_per_s": echo_rate,
            "isapi_pushes_per_s": rate(isapi_res),
            "isapi_published_per_s": round(isapi_pub / d),
            "isapi_vs_echo": round(rate(isapi_res) / max(echo_rate, 1), 3),
            "sip_alarms_per_s": rate(sip_res),
            "sip_published_per_s": round(sip_pub / d),
            "sip_registered": sum(r["registered"] for r in sip_res),
            "errors": {
                "echo": sum(r["errors"] for r in echo_res),
                "isapi": sum(r["errors"] for r in isapi_res),
                "sip": sum(r["errors"] for r in sip_res),
            },
            "wall_s": {"echo": round(echo_t, 1), "isapi": round(isapi_t, 1), "sip": round(sip_t, 1)},
        }
    finally:
        if echo is not None:
            echo.terminate()
            echo.join(10)
        if service is not None:
            service.stop()
        if prefix:
            asyncio.run(drop_redis_keys(backing.redis_url, prefix))
        backing.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per phase (at most 300)")
    parser.add_argument(
        "--concurrency", type=int, default=32, help="HTTP requests in flight per load process"
    )
    parser.add_argument("--devices", type=int, default=64, help="GB/T 28181 devices in total")
    parser.add_argument("--workers", type=int, default=2, help="load-generator processes")
    args = parser.parse_args(argv)
    args.duration = min(args.duration, 300.0)
    args.devices = max(args.devices, args.workers)
    print(json.dumps(bench(args), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
