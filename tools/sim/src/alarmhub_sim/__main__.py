"""``alarmhub-sim``: real wire-protocol traffic for the dev stack, tests and benchmarks.

Subcommands:
  panic   send one Contact ID panic (E120) from one account and print the receiver's reply
  dc09    drive many alarm panels at a rate, bounded by --count and/or --duration
  gps     drive vehicle fleets (JT/T 808, GT06, H02)
  camera  drive cameras (ISAPI, ONVIF, GB/T 28181)
  jt809   a lower-level GPS platform that logs in over JT/T 809 and forwards a fleet
  live    what `make run` runs: every protocol at a gentle rate, demo sites registered first
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import signal
import sys
from typing import Any

import httpx

from . import dc09
from .sites import demo_sites


def _env_port(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


async def register_sites(api: str, token: str, sites: list[Any], wait_s: float = 120.0) -> int:
    """Register the demo sites in the account registry through the dispatch API (retrying while it starts)."""
    deadline = asyncio.get_running_loop().time() + wait_s
    async with httpx.AsyncClient(
        base_url=api, headers={"Authorization": f"Bearer {token}"}, timeout=10
    ) as client:
        while True:
            try:
                ok = 0
                for s in sites:
                    r = await client.post("/api/v1/registry/accounts", json=s.registry_record())
                    if r.status_code in (200, 201, 409):
                        ok += 1
                    else:
                        print(
                            json.dumps(
                                {"event": "register_failed", "status": r.status_code, "body": r.text[:200]}
                            ),
                            file=sys.stderr,
                        )
                return ok
            except httpx.HTTPError:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(1.0)


def _optional(module: str) -> Any | None:
    try:
        return importlib.import_module(f"alarmhub_sim.{module}")
    except ImportError:
        return None


async def _live(args: argparse.Namespace) -> dict[str, Any]:
    host = args.host
    sites = demo_sites(args.sites, seed=args.seed)
    api = os.environ.get("ALARMHUB_API", f"http://127.0.0.1:{_env_port('ALARMHUB_HTTP_PORT', 8080)}")
    token = os.environ.get("ALARMHUB_DEV_TOKEN", "dev-city-admin")
    print(json.dumps({"event": "simulator_started", "api": api, "sites": len(sites)}), flush=True)
    registered = await register_sites(api, token, sites)
    print(json.dumps({"event": "sites_registered", "count": registered}), flush=True)
    jobs: dict[str, Any] = {
        "dc09": dc09.run(
            host,
            _env_port("ALARMHUB_DC09_PORT", 7100),
            sites,
            rate=args.rate,
            duration_s=args.duration,
            poll_interval_s=60.0,
            seed=args.seed,
        ),
    }
    gps = _optional("gps")
    if gps is not None:
        jobs["gps"] = gps.run(
            host,
            {
                "jt808": _env_port("ALARMHUB_JT808_PORT", 5015),
                "gt06": _env_port("ALARMHUB_GT06_PORT", 5023),
                "h02": _env_port("ALARMHUB_H02_PORT", 5013),
            },
            rate=args.rate * 10,
            count=None,
            duration_s=args.duration,
            vehicles=60,
            seed=args.seed,
        )
    camera = _optional("camera")
    if camera is not None:
        jobs["camera"] = camera.run(
            f"http://{host}:{_env_port('ALARMHUB_CAMERA_HTTP_PORT', 8081)}",
            host,
            _env_port("ALARMHUB_SIP_PORT", 5060),
            rate=args.rate,
            count=None,
            duration_s=args.duration,
            cameras=30,
            seed=args.seed,
        )
    names = list(jobs)
    results = await asyncio.gather(*jobs.values(), return_exceptions=True)
    return {
        n: (r if not isinstance(r, BaseException) else repr(r)) for n, r in zip(names, results, strict=True)
    }


async def _until_signal(work: Any) -> dict[str, Any]:
    """Run ``work`` until it ends or SIGINT/SIGTERM arrives: under ``make run``'s supervisor the simulator is
    stopped like the services, with a summary line and exit code 0 rather than killed by the signal."""
    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        return await task
    except asyncio.CancelledError:
        return {"event": "stopped"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="alarmhub-sim", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--seed", type=int, default=1)
    sub = parser.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("panic", help="send one Contact ID panic")
    p.add_argument("--port", type=int, default=_env_port("ALARMHUB_DC09_PORT", 7100))
    p.add_argument("--account", default="1000")
    p.add_argument("--line", default="1")
    p.add_argument("--zone", default="000")

    p = sub.add_parser("dc09", help="drive DC-09 panels")
    p.add_argument("--port", type=int, default=_env_port("ALARMHUB_DC09_PORT", 7100))
    p.add_argument("--sites", type=int, default=50)
    p.add_argument("--rate", type=float, default=5.0, help="alarms per second in total")
    p.add_argument("--count", type=int, default=None)
    p.add_argument("--duration", type=float, default=None, help="seconds")
    p.add_argument("--register", metavar="API", help="register the sites through this dispatch API first")
    p.add_argument("--token", default=os.environ.get("ALARMHUB_DEV_TOKEN", "dev-city-admin"))

    for name in ("gps", "camera"):
        p = sub.add_parser(name, help=f"drive {name} traffic")
        p.add_argument("--rate", type=float, default=10.0)
        p.add_argument("--count", type=int, default=None)
        p.add_argument("--duration", type=float, default=None)
        p.add_argument("--units", type=int, default=50, help="vehicles or cameras")

    p = sub.add_parser("jt809", help="a JT/T 809 lower-level platform forwarding a fleet")
    p.add_argument("--port", type=int, default=_env_port("ALARMHUB_JT809_PORT", 5809))
    p.add_argument("--user-id", type=int, default=int(os.environ.get("ALARMHUB_SIM_JT809_USER", "20001")))
    p.add_argument("--password", default=os.environ.get("ALARMHUB_SIM_JT809_PASSWORD", "sim-platform"))
    p.add_argument(
        "--gnss-center-id", type=int, default=int(os.environ.get("ALARMHUB_SIM_JT809_CENTER", "20001"))
    )
    p.add_argument("--rate", type=float, default=50.0, help="positions per second")
    p.add_argument("--count", type=int, default=None)
    p.add_argument("--duration", type=float, default=None)
    p.add_argument("--units", type=int, default=100, help="vehicles")
    p.add_argument("--alarms", type=int, default=0, help="0x1402 alarm reports to send")

    p = sub.add_parser("live", help="every protocol at a gentle rate (make run)")
    p.add_argument("--rate", type=float, default=0.5, help="alarms per second")
    p.add_argument("--sites", type=int, default=40)
    p.add_argument("--duration", type=float, default=24 * 3600.0)

    args = parser.parse_args(argv)
    if args.cmd == "panic":
        site = next(s for s in demo_sites(1))
        site = type(site)(**{**site.__dict__, "account": args.account, "line": args.line})
        reply = asyncio.run(dc09.send_one(args.host, args.port, site, "1", "120", args.zone))
        print(reply)
        return 0 if reply == "ACK" else 1
    if args.cmd == "dc09":
        if args.count is None and args.duration is None:
            parser.error("bound the run with --count and/or --duration")
        sites = demo_sites(args.sites, seed=args.seed)

        async def go() -> dict[str, int]:
            if args.register:
                await register_sites(args.register, args.token, sites)
            return await dc09.run(
                args.host,
                args.port,
                sites,
                rate=args.rate,
                count=args.count,
                duration_s=args.duration,
                seed=args.seed,
            )

        print(json.dumps(asyncio.run(go())))
        return 0
    if args.cmd == "jt809":
        if args.count is None and args.duration is None:
            parser.error("bound the run with --count and/or --duration")
        from . import jt809

        print(
            json.dumps(
                asyncio.run(
                    jt809.run(
                        args.host,
                        args.port,
                        user_id=args.user_id,
                        password=args.password,
                        gnss_center_id=args.gnss_center_id,
                        rate=args.rate,
                        count=args.count,
                        duration_s=args.duration,
                        vehicles=args.units,
                        seed=args.seed,
                        alarms=args.alarms,
                    )
                )
            )
        )
        return 0
    if args.cmd in ("gps", "camera"):
        if args.count is None and args.duration is None:
            parser.error("bound the run with --count and/or --duration")
        mod = _optional(args.cmd)
        if mod is None:
            parser.error(f"the {args.cmd} simulator is not available in this build")
        if args.cmd == "gps":
            res = asyncio.run(
                mod.run(
                    args.host,
                    {
                        "jt808": _env_port("ALARMHUB_JT808_PORT", 5015),
                        "gt06": _env_port("ALARMHUB_GT06_PORT", 5023),
                        "h02": _env_port("ALARMHUB_H02_PORT", 5013),
                    },
                    rate=args.rate,
                    count=args.count,
                    duration_s=args.duration,
                    vehicles=args.units,
                    seed=args.seed,
                )
            )
        else:
            res = asyncio.run(
                mod.run(
                    f"http://{args.host}:{_env_port('ALARMHUB_CAMERA_HTTP_PORT', 8081)}",
                    args.host,
                    _env_port("ALARMHUB_SIP_PORT", 5060),
                    rate=args.rate,
                    count=args.count,
                    duration_s=args.duration,
                    cameras=args.units,
                    seed=args.seed,
                )
            )
        print(json.dumps(res))
        return 0
    print(json.dumps(asyncio.run(_until_signal(_live(args))), default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
