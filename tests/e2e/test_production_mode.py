"""Production mode, end to end: every service as a process with compose.yaml's settings (no dev token, no
demo geography), its host names pointed at the local stack — there is no Docker here.

`alarmhub-admin init` with compose's init environment on an empty database, then a small real-shaped
city imported as an operator would (units with polygons in GCJ-02, one alarm company account, one
vehicle, one camera, one station dispatcher); a person signs in to the console in Chromium with a
password, on a base map served from an MBTiles file; a DC-09 alarm and a JT/T 808 SOS arrive and are
routed to the stations whose areas hold them, one is acknowledged in the console, a vehicle command
reaches the terminal. Screenshots in artifacts/screenshots/production-*.png.
"""

from __future__ import annotations

import asyncio
import csv
import importlib
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
import yaml
from alarmhub_admin.sources import read_units
from alarmhub_devstack import free_port
from alarmhub_devstack.testing import SINGLE_WORKER, ServiceProcess
from alarmhub_ingest_gps.protocols import jt808
from alarmhub_runtime import BaseServiceSettings
from alarmhub_sim import dc09
from alarmhub_sim.sites import Site

from ..deploy.conftest import TEST_SECRETS, interpolate
from .inproc import read_808, terminal_login

ROOT = Path(__file__).resolve().parents[2]
CITY = ROOT / "tools/admin/tests/data/mini-city-gcj02.geojson"
CHROMIUM = os.environ.get("ALARMHUB_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path("artifacts/screenshots")
PHONE = "013912345678"
ADMIN_PW = "city-supervisor-pw-1"

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no Chromium")]
playwright_api = pytest.importorskip("playwright.async_api")

SERVICES = {  # compose service → python module
    "dispatch": "alarmhub_dispatch",
    "triage": "alarmhub_triage",
    "ingest-contactid": "alarmhub_ingest_contactid",
    "ingest-gps": "alarmhub_ingest_gps",
    "ingest-camera": "alarmhub_ingest_camera",
}


def _settings(module: str) -> type[BaseServiceSettings]:
    mod = importlib.import_module(f"{module}.config")
    return next(
        v
        for v in vars(mod).values()
        if isinstance(v, type) and issubclass(v, BaseServiceSettings) and v is not BaseServiceSettings
    )


def _local_urls(value: str, ports: dict[str, dict[int, int]]) -> str:
    """Every ``http://<service>:<port>`` of a value (or a comma-separated list of them) rewritten to where
    that service listens here."""

    def local(m: re.Match[str]) -> str:
        if m.group(1) not in ports:
            return m.group(0)
        return f"http://127.0.0.1:{ports[m.group(1)][int(m.group(2))]}{m.group(3) or ''}"

    return re.sub(r"http://([a-z0-9-]+):(\d+)(/[^,]*)?", local, value)


def _runs_here(url: str, ports: dict[str, dict[int, int]]) -> bool:
    """Whether ``http://<service>:<port>/…`` names a port one of this test's processes listens on."""
    m = re.match(r"http://([a-z0-9-]+):(\d+)", url)
    return m is not None and int(m.group(2)) in ports.get(m.group(1), {})


def _local_env(
    compose: dict[str, Any], stack: Any, db: str, prefix: str
) -> tuple[dict[str, dict[str, str]], dict[str, dict[int, int]]]:
    """compose's environment per service with its listeners on free loopback ports and every
    ``http://<service>:<port>`` it names rewritten to where that service listens here; and those ports
    (service → {compose port → local port})."""
    ports: dict[str, dict[int, int]] = {}  # service → {compose port → local port}
    envs: dict[str, dict[str, str]] = {}
    for name, module in SERVICES.items():
        env = {k: v for k, v in os.environ.items() if not k.startswith("ALARMHUB_")}
        env.update({k: str(v) for k, v in compose["services"][name]["environment"].items()})
        env.update(
            KAFKA_BOOTSTRAP=stack.kafka_bootstrap,
            REDIS_URL=stack.redis_url,
            DATABASE_URL=db,
            ALARMHUB_TOPIC_PREFIX=prefix,
            ALARMHUB_KAFKA_IDEMPOTENCE="false",  # the dev broker has no idempotent producer; Kafka keeps it on
            # one process per ingest service: compose runs 2 workers (ALARMHUB_*_WORKERS), and here every
            # service shares this host (worker 1's health port would be another service's)
            **SINGLE_WORKER,
        )
        mapping: dict[int, int] = {}
        for field in _settings(module).model_fields.values():
            alias = field.alias or ""
            if alias.endswith("_PORT"):
                original = int(env.get(alias, field.default or 0))
                env[alias] = str(mapping.setdefault(original, free_port()))
            elif alias.endswith("_HOST"):
                env[alias] = "127.0.0.1"
        ports[name], envs[name] = mapping, env
    for env in envs.values():
        for key, value in list(env.items()):
            env[key] = _local_urls(value, ports)
    return envs, ports


def _admin(env: dict[str, str], *args: str) -> str:
    r = subprocess.run(
        [sys.executable, "-m", "alarmhub_admin", *args], env=env, capture_output=True, text=True, timeout=180
    )
    assert r.returncode == 0, f"alarmhub-admin {' '.join(args)}:\n{r.stdout}\n{r.stderr}"
    return r.stdout


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture
def production(stack: Any, topic_prefix: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    from alarmhub_store import sqlalchemy_url
    from sqlalchemy import create_engine, text

    compose = interpolate(yaml.safe_load((ROOT / "compose.yaml").read_text()), dict(TEST_SECRETS))
    dbname = f"alarmhub_prod_{uuid.uuid4().hex[:8]}"
    db = stack.admin_database_url.rsplit("/", 1)[0] + "/" + dbname
    envs, ports = _local_env(compose, stack, db, topic_prefix)
    assert (
        "ALARMHUB_DEV_TOKEN" not in envs["dispatch"]
        and envs["dispatch"]["ALARMHUB_DEMO_GEOGRAPHY"] == "false"
    )

    # 1. init, exactly as compose's one-shot service runs it (the secret as a file)
    secret = tmp_path / "admin_password"
    secret.write_text(ADMIN_PW + "\n")
    admin_env = {k: v for k, v in os.environ.items() if not k.startswith("ALARMHUB_")}
    # compose's init environment, its service addresses (what `check` reaches) pointed at the processes here
    init_env = {k: str(v) for k, v in compose["services"]["init"]["environment"].items()}
    # compose runs 2 workers of each ingest service (worker i's /readyz on the health port + i); here each runs
    # one (SINGLE_WORKER), so `check` probes the /readyz of the workers that exist here
    init_env["ALARMHUB_CHECK_HEALTH_URLS"] = ",".join(
        url for url in init_env["ALARMHUB_CHECK_HEALTH_URLS"].split(",") if _runs_here(url, ports)
    )
    admin_env.update({k: _local_urls(v, ports) for k, v in init_env.items()})
    admin_env.update(
        KAFKA_BOOTSTRAP=stack.kafka_bootstrap,
        REDIS_URL=stack.redis_url,
        DATABASE_URL=db,
        ALARMHUB_TOPIC_PREFIX=topic_prefix,
        ALARMHUB_TOPIC_REPLICATION="1",
        ALARMHUB_ADMIN_PASSWORD_FILE=str(secret),
        ALARMHUB_CITY_ID="mc",  # the operator's .env names the city as its unit file does
        ALARMHUB_CITY_NAME="示范市",
    )
    assert "city supervisor: admin created" in _admin(admin_env, "init")

    # 2. the city: units (GCJ-02), an alarm company's account, a vehicle, a camera, a station dispatcher
    units = {u.id: u for u in read_units(CITY, "gcj02")[0]}
    _admin(admin_env, "import", "units", str(CITY), "--crs", "gcj02")
    bank = units["F2"].geometry.representative_point()  # type: ignore[union-attr]
    road = units["L1"].geometry.representative_point()  # type: ignore[union-attr]
    site = Site(
        "3",
        "7788",
        "示范保安公司",
        "示范银行网点",
        "福田区示范路1号",
        round(bank.y, 6),
        round(bank.x, 6),
        "440304",
    )
    _admin(
        admin_env,
        "import",
        "accounts",
        str(
            _write_csv(
                tmp_path / "accounts.csv",
                ["line", "account", "company", "site_name", "site_address", "lat", "lon", "supervision_s"],
                [[site.line, site.account, site.company, site.name, site.address, site.lat, site.lon, 300]],
            )
        ),
    )
    _admin(
        admin_env,
        "import",
        "vehicles",
        str(
            _write_csv(
                tmp_path / "vehicles.csv",
                ["device_id", "protocol", "plate", "owner"],
                [[PHONE, "jt808", "粤B·P0001", "张先生"]],
            )
        ),
    )
    _admin(
        admin_env,
        "import",
        "cameras",
        str(
            _write_csv(
                tmp_path / "cameras.csv",
                ["id", "name", "lat", "lon", "unit", "network"],
                [["44030400001320000001", "示范路口摄像机", site.lat, site.lon, "F2", "police_video"]],
            )
        ),
    )
    _admin(
        admin_env,
        "import",
        "people",
        str(
            _write_csv(
                tmp_path / "people.csv",
                ["user", "display_name", "role", "unit", "password"],
                [["f2.duty", "福田第2派出所值班员", "dispatcher", "F2", "station-duty-pw-1"]],
            )
        ),
    )
    tiles = tmp_path / "city.mbtiles"
    _admin(admin_env, "tiles", str(CITY), str(tiles), "--crs", "gcj02", "--zoom", "11-13")
    envs["dispatch"]["ALARMHUB_MAP_MBTILES"] = str(tiles)  # the city's own tile file (isolated network)

    # 3. every service as a process with compose's settings
    procs = {
        name: ServiceProcess(
            module=SERVICES[name], env=env, ports={"ALARMHUB_HEALTH_PORT": int(env["ALARMHUB_HEALTH_PORT"])}
        )
        for name, env in envs.items()
    }
    try:
        for p in procs.values():
            p.start(wait_ready=False)
        for p in procs.values():
            p.wait_ready(90)
        yield {"envs": envs, "admin_env": admin_env, "site": site, "road": (road.x, road.y), "db": db}
    finally:
        for p in procs.values():
            p.stop()
        engine = create_engine(sqlalchemy_url(stack.admin_database_url), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))
        finally:
            engine.dispose()


async def _wait_incident(client: httpx.AsyncClient, pred: Any, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for inc in (await client.get("/api/v1/incidents")).json()["items"]:
            if pred(inc):
                return dict(inc)
        await asyncio.sleep(0.2)
    raise AssertionError("no such incident")


async def test_a_city_in_production_mode(production: dict[str, Any]) -> None:
    envs, site = production["envs"], production["site"]
    api = f"http://127.0.0.1:{envs['dispatch']['ALARMHUB_HTTP_PORT']}"
    # the operator's check with compose's init environment (`docker compose run --rm init alarmhub-admin
    # check`): dispatch, the GPS command endpoint with dispatch's token, every service's /readyz answer
    check_env = production["admin_env"]
    assert check_env["ALARMHUB_DISPATCH_URL"] == api
    assert check_env["ALARMHUB_GPS_COMMAND_URL"] == envs["dispatch"]["ALARMHUB_GPS_COMMAND_URL"]
    out = await asyncio.to_thread(_admin, check_env, "check")
    assert out.rstrip().endswith("everything answers"), out
    assert out.count("ok    health: ") == len(SERVICES) and "ok    ingest-gps commands: " in out, out
    assert "WARN  external units" in out  # this city has not imported its 119/120 yet
    bad = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "alarmhub_admin", "check"],
        env={
            **check_env,
            "ALARMHUB_GPS_COMMAND_URL": "http://127.0.0.1:1/commands",
            "ALARMHUB_CHECK_HEALTH_URLS": "",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1 and "FAIL  ingest-gps commands" in bad.stdout
    assert "nothing listens at ALARMHUB_GPS_COMMAND_URL" in bad.stdout, bad.stdout
    async with httpx.AsyncClient(base_url=api, timeout=20) as anon:
        assert (await anon.get("/api/v1/incidents")).status_code == 401  # no dev token anywhere
        # the city supervisor signs in with a second factor (TOTP): enrol an authenticator, then its code
        enrolled = await anon.post("/api/v1/login/totp/enrol", json={"user": "admin", "password": ADMIN_PW})
        assert enrolled.status_code == 200, enrolled.text
        authenticator = pyotp.parse_uri(enrolled.json()["otpauth_uri"])
        confirmed = await anon.post(
            "/api/v1/login/totp/confirm",
            json={"user": "admin", "password": ADMIN_PW, "code": authenticator.now()},
        )
        assert confirmed.status_code == 200, confirmed.text
        login = await anon.post(
            "/api/v1/login",
            json={"user": "admin", "password": ADMIN_PW, "otp": authenticator.at(time.time() + 30)},
        )
        assert login.status_code == 200, login.text
    city = httpx.AsyncClient(
        base_url=api, timeout=20, headers={"Authorization": f"Bearer {login.json()['token']}"}
    )
    os.makedirs(SHOTS, exist_ok=True)
    async with city, playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 900})
            await page.goto(api + "/")
            await page.fill("#user", "f2.duty")
            await page.fill("#password", "station-duty-pw-1")
            await page.click("#login-form button[type=submit]")
            await page.wait_for_selector("#conn.on", timeout=20_000)
            await page.wait_for_selector("#map img.leaflet-tile-loaded", timeout=20_000)
            assert await page.locator("#synth-note").is_hidden()  # the city's own areas, not the demo's
            await page.screenshot(path=str(SHOTS / "production-1-signed-in.png"))

            # a DC-09 panic from the alarm company's account, and a JT/T 808 SOS on a Luohu road
            reply = await dc09.send_one(
                "127.0.0.1", int(envs["ingest-contactid"]["ALARMHUB_DC09_PORT"]), site, "1", "120", "001"
            )
            assert reply == "ACK"
            reader, writer = await terminal_login(int(envs["ingest-gps"]["ALARMHUB_JT808_PORT"]), PHONE)
            lon, lat = production["road"]
            beijing = datetime.now(UTC).astimezone(timezone(timedelta(hours=8))).replace(tzinfo=None)
            writer.write(
                jt808.encode(
                    0x0200,
                    PHONE,
                    3,
                    jt808.encode_location_body(
                        lat=lat, lon=lon, alarm_bits=0x1, status_bits=0x03, speed_kmh=30, local_time=beijing
                    ),
                )
            )
            await read_808(reader)  # the platform's general reply

            panic = await _wait_incident(city, lambda i: i["source_device_id"] == site.device_id)
            sos = await _wait_incident(city, lambda i: i["source_device_id"] == PHONE)
            assert (
                panic["station"] == "F2"
                and panic["district"] == "440304"
                and panic["route"]["method"] == "inside"
            )
            assert sos["station"] == "L1" and sos["district"] == "440303"

            # the station's console has it live; its dispatcher acknowledges it there
            row = page.locator(f'tr[data-id="{panic["id"]}"]')
            await row.wait_for(timeout=20_000)
            assert await page.locator(f'tr[data-id="{sos["id"]}"]').count() == 0  # Luohu's, not Futian's
            await row.locator('button[data-act="ack"]').click()
            await page.wait_for_function(
                f'document.querySelector(\'tr[data-id="{panic["id"]}"] .status\').textContent === "已接警"',
                timeout=15_000,
            )
            await page.screenshot(path=str(SHOTS / "production-2-acknowledged.png"))
            detail = (await city.get(f"/api/v1/incidents/{panic['id']}")).json()
            acked = [e for e in detail["timeline"] if e["type"] == "acknowledged"]
            assert acked and acked[0]["actor"]["user"] == "f2.duty"

            # a vehicle command from dispatch reaches the terminal through the GPS gateway
            async def terminal() -> jt808.Message:
                while True:
                    msg = await read_808(reader)
                    if msg.header.msg_id == 0x8201:
                        body = msg.header.serial.to_bytes(2, "big") + jt808.encode_location_body(
                            lat=lat, lon=lon, status_bits=0x03, local_time=beijing
                        )
                        writer.write(jt808.encode(0x0201, PHONE, 4, body))
                        return msg

            task = asyncio.create_task(terminal())
            r = await city.post(
                f"/api/v1/incidents/{sos['id']}/vehicle-command",
                json={"command": "query_position", "timeout_s": 15},
            )
            got = await asyncio.wait_for(task, 20)
            assert got.header.msg_id == 0x8201
            assert r.status_code == 200, r.text
            assert r.json()["reply"]["status"] == "ok"
            writer.close()
        finally:
            await browser.close()
