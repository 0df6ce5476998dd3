"""Cut fuel/power (``cutoff``) and ``restore``: the rules dispatch checks before the gateway is asked.

- **Who**: :data:`~.auth.CUTOFF_ROLES` (dispatchers and supervisors: the roles that command vehicles),
  checked explicitly; every other role gets 403 even where it may read the incident.
- **Second confirmation**: ``params.confirm`` must repeat the vehicle's plate (its device id when the
  registry has no plate) — the console's dialog names the vehicle and plate and asks for it typed.
- **Safe speed** (cut-off only; a restore is always safe): the vehicle's latest fix must be younger than
  ``ALARMHUB_CUTOFF_FIX_MAX_AGE_S`` and slower than ``ALARMHUB_CUTOFF_MAX_SPEED_KMH``. No fix, a stale
  one or one without a speed counts as unknown → refused. A refusal is an answer (``status: refused``
  with the reason), recorded on the timeline and in the audit log like a sent command; nothing reaches
  the gateway.
- **Which terminals**: ingest-gps owns the model table (``protocols/commands_cutoff.py``); dispatch
  passes the registry's ``vehicles.model`` and shows the gateway's ``unsupported`` as it comes.
- **Audit**: every attempt (sent, refused, unsupported, unanswered) is an ``audit_log`` row of kind
  ``action`` with ``detail.cutoff`` = vehicle, plate, command, result, speed seen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .audit import AuditWriter
from .auth import CUTOFF_ROLES, Principal
from .errors import Forbidden, Invalid

if TYPE_CHECKING:
    from .service import Dispatcher

__all__ = ["CUTOFF_COMMANDS", "CutoffPolicy", "audit_cutoff", "check_cutoff"]

CUTOFF_COMMANDS = ("cutoff", "restore")


@dataclass(frozen=True, slots=True)
class CutoffPolicy:
    """Set by the app from ``ALARMHUB_CUTOFF_MAX_SPEED_KMH`` and ``ALARMHUB_CUTOFF_FIX_MAX_AGE_S``."""

    max_speed_kmh: float = 5.0
    fix_max_age_s: float = 60.0


def _refusal(reason: str, device: str, fix: dict[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {"status": "refused", "device_id": device, "reason": reason}
    if fix is not None:
        out["fix"] = {"at": fix["at"].isoformat(), "speed_kmh": fix.get("speed_kmh")}
    return out


async def check_cutoff(
    d: Dispatcher, who: Principal, device: str, command: str, params: dict[str, Any], now: datetime
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(params for the gateway, or the refusal to answer with). Raises Forbidden / Invalid."""
    if who.role not in CUTOFF_ROLES:
        raise Forbidden(f"role {who.role} may not cut a vehicle's fuel or power")
    vehicle = await d.store.registry.vehicle_plate_model(device)
    plate = (vehicle["plate"] if vehicle else None) or device
    confirm = str(params.get("confirm") or "").strip()
    if confirm.replace(" ", "").upper() != plate.replace(" ", "").upper():
        raise Invalid(f"confirm the {command} by repeating the vehicle's plate ({plate}) in params.confirm")
    out = {"model": vehicle["model"] if vehicle else None}
    if command == "restore":
        return out, None
    fix = await d.store.tracks.latest_fix(device, now)
    policy = d.cutoff_policy
    if fix is None:
        return out, _refusal("no position known: the speed is unknown", device, None)
    age = (now - fix["at"]).total_seconds()
    if age > policy.fix_max_age_s:
        return out, _refusal(
            f"the latest position is {age:.0f} s old (over {policy.fix_max_age_s:.0f} s): the speed is unknown",
            device,
            fix,
        )
    speed = fix.get("speed_kmh")
    if speed is None or speed >= policy.max_speed_kmh:
        seen = "unknown" if speed is None else f"{speed:.0f} km/h"
        return out, _refusal(
            f"the vehicle is moving ({seen}; cut-off only below {policy.max_speed_kmh:g} km/h)", device, fix
        )
    return out, None


async def audit_cutoff(
    d: Dispatcher, who: Principal, device: str, command: str, reply: dict[str, Any], incident: str
) -> None:
    """The attempt's audit row: who (the row's user/role/unit), when (its ``at``), vehicle and result."""
    fix = reply.get("fix") or {}
    detail = {
        "cutoff": {
            "command": command,
            "device_id": device,
            "incident_id": incident,
            "result": reply.get("status"),
            "reason": reply.get("reason"),
            "speed_kmh": fix.get("speed_kmh"),
        }
    }
    path = f"/api/v1/incidents/{incident}/vehicle-command"
    await AuditWriter(d.store, d.metrics).write(
        "action", who, method="POST", path=path, status=None, address=None, detail=detail
    )
