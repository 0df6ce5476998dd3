"""The registry of lower platforms a JT/T 809 main link may log in as (table ``platforms``, managed on
dispatch's API): records, the in-memory directory, its periodic refresh and the link-status write-back."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from alarmhub_runtime import get_logger

from ..protocols import jt809 as p

__all__ = [
    "LinkStatusSink",
    "PlatformDirectory",
    "PlatformRecord",
    "ip_allowed",
    "link_status_writer",
    "load_platforms",
    "refresh_platforms",
]

log = get_logger("alarmhub.ingest_gps.jt809")

LinkStatusSink = Callable[[int, str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class PlatformRecord:
    """One row of ``platforms``: credentials, GNSS centre id, cipher constants, what it may send."""

    user_id: int
    password: str
    gnss_center_id: int
    name: str | None = None
    cipher: p.Cipher | None = None
    allowed_plates: frozenset[str] | None = None
    allowed_ips: tuple[str, ...] = ()
    plate_prefixes: tuple[str, ...] = ()  # region: plates starting with one of these (粤B = Shenzhen)
    disabled: bool = False

    @property
    def label(self) -> str:
        return self.name or str(self.user_id)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> PlatformRecord:
        enc = row.get("encrypt") or {}
        allowed = row.get("allowed") or {}
        cipher = None
        if enc and all(enc.get(k) is not None for k in ("m1", "ia1", "ic1")):
            cipher = p.Cipher(int(enc["m1"]), int(enc["ia1"]), int(enc["ic1"]))
        plates = allowed.get("plates")
        return cls(
            int(row["user_id"]),
            str(row["password"]),
            int(row["gnss_center_id"]),
            row.get("name"),
            cipher,
            frozenset(plates) if plates else None,
            tuple(allowed.get("ips") or ()),
            tuple(allowed.get("plate_prefixes") or ()),
            bool(row.get("disabled", False)),
        )

    def allows(self, plate: str, device_id: str) -> bool:
        """Whether the platform may forward this vehicle (no list and no prefixes: any vehicle)."""
        if self.allowed_plates is None and not self.plate_prefixes:
            return True
        if self.allowed_plates is not None and (
            plate in self.allowed_plates or device_id in self.allowed_plates
        ):
            return True
        return any(plate.startswith(pre) for pre in self.plate_prefixes)


class PlatformDirectory:
    """Lookup by user id (login) and by GNSS centre id (to decrypt a login before its body is readable)."""

    def __init__(self, records: Iterable[PlatformRecord] = ()) -> None:
        self.by_user: dict[int, PlatformRecord] = {}
        self.by_center: dict[int, PlatformRecord] = {}
        self.replace(records)

    def replace(self, records: Iterable[PlatformRecord]) -> None:
        users = {r.user_id: r for r in records}
        self.by_user = users
        self.by_center = {r.gnss_center_id: r for r in users.values()}


async def load_platforms(database_url: str) -> list[PlatformRecord]:
    """Read the ``platforms`` table (asyncpg); JSON columns arrive as text."""

    import asyncpg

    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        rows = await conn.fetch(
            "SELECT user_id, password, gnss_center_id, name, encrypt, allowed, disabled FROM platforms"
        )
    finally:
        await conn.close()
    out = []
    for r in rows:
        d = dict(r)
        for k in ("encrypt", "allowed"):
            if isinstance(d[k], str):
                d[k] = json.loads(d[k])
        out.append(PlatformRecord.from_row(d))
    return out


async def refresh_platforms(
    directory: PlatformDirectory,
    database_url: str,
    *,
    interval_s: float = 30.0,
    stop: asyncio.Event | None = None,
    on_refresh: Callable[[PlatformDirectory], Any] | None = None,
) -> None:
    """Re-read ``platforms`` every ``interval_s`` until ``stop`` is set (or the task is cancelled).

    A failed read keeps the previous view: a database hiccup must not log every platform out.
    ``on_refresh`` (the server's ``enforce``) runs after each successful read.
    """
    stop = stop or asyncio.Event()
    while not stop.is_set():
        try:
            directory.replace(await load_platforms(database_url))
            if on_refresh is not None:
                on_refresh(directory)
        except Exception as exc:  # asyncpg/OS errors of every kind; the link keeps its last view
            log.warning("jt809_platforms_unavailable", error=repr(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)


def link_status_writer(database_url: str) -> LinkStatusSink:
    """An ``on_link_status`` sink that writes ``platforms.link_status`` (``up``, ``up+slave``, ``down``)."""
    import asyncpg

    async def write(user_id: int, status: str) -> None:
        # link changes are rare: a connection per change, nothing left open at shutdown
        conn = await asyncpg.connect(database_url, timeout=5)
        try:
            await conn.execute(
                "UPDATE platforms SET link_status = $2, link_changed_at = now() WHERE user_id = $1",
                user_id,
                status,
            )
        finally:
            await conn.close()

    return write


def ip_allowed(peer: str | None, allowed: tuple[str, ...]) -> bool:
    if not peer:
        return False
    host = peer.rsplit(":", 1)[0].strip("[]")
    try:
        addr = ipaddress.ip_address(host)
        return any(addr in ipaddress.ip_network(net, strict=False) for net in allowed)
    except ValueError:
        return False
