"""Last known status of every device, from ``devices.status``, for the online-rate reports.

One row per device (``device_status``, alembic ``dispatch_0005``): its kind (from the protocol), whether it
is online, the last status and when it happened, and the station/district it belongs to:

- cameras: the camera registry's ``unit`` (a station or a district), else the camera's position routed;
- alarm panels (DC-09): the account's site position routed;
- vehicles and JT/T 809 platforms: no unit (they move, or serve the whole city): the city tier sees them.

``online`` is true after ``online`` / ``supervision_restored``, false after ``offline`` /
``supervision_missed``; other statuses (battery, tamper, ignition …) arrive over a live link, so they
mark a device first seen as online and otherwise leave ``online`` as it is. An older status than the
one stored (a replay, or partitions read out of order) changes nothing. A JT/T 809 platform's late answer
to a supervision (``attributes.jt809_supervision_answer``, see ``Dispatcher.vehicle_answers``) says
nothing about the vehicle's link and is not a status here.
"""

# no "from __future__ import annotations": FastAPI resolves the route's dependency annotations at definition time

from collections.abc import Sequence
from typing import Any

from alarmhub_events import SUPERVISION_ANSWER, DeviceStatus, DeviceStatusKind, Protocol

from .routing import Router
from .store import Store
from .units import UnitTree

__all__ = ["DEVICE_KINDS", "DeviceStatusStore", "device_kind", "online_of"]

DEVICE_KINDS = ("camera", "alarm_panel", "vehicle", "platform")

_KIND = {
    Protocol.ISAPI: "camera",
    Protocol.ONVIF: "camera",
    Protocol.GB28181: "camera",
    Protocol.WEBHOOK: "camera",
    Protocol.DC09_CID: "alarm_panel",
    Protocol.DC09_SIA: "alarm_panel",
    Protocol.JT808: "vehicle",
    Protocol.GT06: "vehicle",
    Protocol.H02: "vehicle",
    Protocol.JT809: "platform",
}
_UP = {DeviceStatusKind.ONLINE, DeviceStatusKind.SUPERVISION_RESTORED}
_DOWN = {DeviceStatusKind.OFFLINE, DeviceStatusKind.SUPERVISION_MISSED}


def device_kind(s: DeviceStatus) -> str:
    # a JT/T 809 link reports itself as the platform; vehicles forwarded over it report as vehicles
    if s.protocol == Protocol.JT809 and ":" in s.device_id:
        return "vehicle"
    return _KIND.get(s.protocol, "other")


def online_of(status: DeviceStatusKind) -> bool | None:
    """True / False for link statuses; None: says nothing about the link (keep what is known)."""
    if status in _UP:
        return True
    if status in _DOWN:
        return False
    return None


class DeviceStatusStore:
    def __init__(self, store: Store, tree_fn: Any, router_fn: Any) -> None:
        self.store = store
        self._tree_fn = tree_fn  # callables: the dispatcher may swap tree and router on a reload
        self._router_fn = router_fn

    def _district_of(self, unit: str | None) -> tuple[str | None, str | None]:
        tree: UnitTree = self._tree_fn()
        n = tree.nodes.get(unit or "")
        station = n.id if n is not None and n.tier == 3 else None
        while n is not None and n.tier > 2 and n.parent_id:
            n = tree.nodes.get(n.parent_id)
        return station, (n.id if n is not None and n.tier == 2 else None)

    async def _places(self, kinds: dict[str, str]) -> dict[str, tuple[str | None, str | None]]:
        """(station, district) per device: cameras by registry unit or position, panels by their site (batched)."""
        router: Router = self._router_fn()
        out: dict[str, tuple[str | None, str | None]] = {}
        cams = [dev for dev, k in kinds.items() if k == "camera"]
        if cams:
            for cam in await self.store.devices.camera_places(cams):
                place: tuple[str | None, str | None] = (
                    self._district_of(cam["unit"]) if cam["unit"] else (None, None)
                )
                if place[1] is None and cam["lat"] is not None:
                    r = router.route(cam["lon"], cam["lat"])
                    place = (r.station, r.district)
                out[cam["id"]] = place
        panels = {dev: dev.split("#", 1) for dev, k in kinds.items() if k == "alarm_panel" and "#" in dev}
        if panels:
            sites = await self.store.account_sites([acct for _, acct in panels.values()])
            for dev, (line, acct) in panels.items():
                wanted = {line, line.removeprefix("L"), "L" + line.removeprefix("L")}
                site = next((x for x in sites.get(acct, []) if x["line"] in wanted), None)
                if site is not None and site["lat"] is not None:
                    r = router.route(site["lon"], site["lat"])
                    out[dev] = (r.station, r.district)
        return out

    async def handle(self, items: Sequence[DeviceStatus]) -> int:
        """Upsert the last status per device (the newest of the batch); returns how many devices it named.

        One registry query per kind and one ``executemany`` per batch: a gateway restarting brings every
        one of its devices' statuses at once (the plan counts 200,000 cameras)."""
        last: dict[str, DeviceStatus] = {}
        link: dict[str, bool] = {}  # the newest link-bearing status per device in this batch
        for s in sorted(items, key=lambda x: x.occurred_at):
            if SUPERVISION_ANSWER in s.attributes:  # a platform answering a command, not a link state
                continue
            last[s.device_id] = s
            up = online_of(s.status)
            if up is not None:
                link[s.device_id] = up
        kinds = {dev: device_kind(s) for dev, s in last.items()}
        places = await self._places(kinds)
        rows = [
            (
                dev,
                kinds[dev],
                s.protocol.value,
                link.get(dev),
                s.status.value,
                s.occurred_at,
                *places.get(dev, (None, None)),
            )
            for dev, s in last.items()
        ]
        if rows:
            await self.store.devices.upsert_statuses(rows)
        return len(rows)

    async def report(self, visible: frozenset[str] | None, by: str, kind: str | None) -> list[dict[str, Any]]:
        """Devices and online rate per (district[, station], kind). ``visible`` None: the city (everything)."""
        tree: UnitTree = self._tree_fn()
        rows = await self.store.devices.online_report(
            None if visible is None else sorted(visible), kind, by_station=by == "station"
        )
        out = []
        for r in rows:
            item = {
                "district": r["district"],
                "district_name": tree.name(r["district"]) if r["district"] else None,
            }
            if by == "station":
                item["station"] = r["station"]
                item["station_name"] = tree.name(r["station"]) if r["station"] else None
            item.update(
                kind=r["kind"],
                devices=r["devices"],
                online=r["online"],
                online_rate=round(r["online"] / r["devices"], 3) if r["devices"] else None,
                last_status_at=r["last_status_at"].isoformat() if r["last_status_at"] else None,
            )
            out.append(item)
        return out
