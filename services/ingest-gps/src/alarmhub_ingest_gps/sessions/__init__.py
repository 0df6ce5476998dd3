"""Sans-IO tracker sessions: bytes in, events to publish and reply bytes out.

One module per protocol (``jt808``, ``gt06``, ``h02``) over the shared base (``_base``) and data (``_model``).

One session object per TCP connection. ``feed(data, now)`` returns an :class:`Output`; the server
publishes ``output.publish`` (and performs ``output.registry`` writes), and only once the broker
confirmed them writes ``output.reply`` to the terminal — so a terminal never hears "got it" for a
position the platform could still lose. Nothing here touches a socket, a clock or a database: the
vehicle registry is a :class:`Directory` (an in-memory view the app refreshes), time is passed in.

Rules, per protocol:

- **JT/T 808** — 0x0100 registration answers 0x8100 with an authentication code **once**: a terminal
  whose registry row already holds a code is answered result 3 (terminal already registered), counted
  (``Output.reregistrations``) and not given the code again, until it logs out (0x0003 clears the stored
  code) or an operator resets it (docs/security.md). 0x0102 must present the code; until then every
  other message is refused with 0x8001 result 1 and nothing is published, sub-packages are not even
  reassembled, and after ``max_refused`` refusals the connection is closed. The code is an HMAC of the
  device id under the gateway's secret, so any gateway process can verify a terminal that registered
  through another one; a code stored in the registry is accepted too.
- **GT06** — the login packet (IMEI) is the authentication; packets before it are dropped.
- **H02** — no login exists: the first frame names the device, later frames must name the same one.

Unregistered terminals follow :class:`UnregisteredPolicy` (default ``reject``): ``reject`` refuses them (0x8100 result 4,
no GT06 login reply, H02 connection closed), ``accept`` lets them in and writes them to the registry
flagged for an operator to review.

Alarm words are levels (the bit stays set while the condition holds), so an alarm is published when
a bit rises (``new``) and when it falls (``restore``), not on every report; GT06 alarm packets are
events and each one is published. Ignition or movement of a vehicle its owner armed is a
``vehicle_theft`` alarm whatever the terminal says (``signals.VehicleWatch``: the parked spot and radius,
so GPS jitter of a parked car never alarms). Every alarm carries the shared vehicle vocabulary
(``alarmhub_events.VehicleSignal`` / ``VehicleAttr``): ``attributes.signal`` and the watch's ``armed``,
``ignition``, ``parked``, ``speed_kmh`` — the words triage's rules read.
"""

from __future__ import annotations

from ._model import (
    ALARM_KINDS,
    DEV_AUTH_SECRET,
    CommandResult,
    DictDirectory,
    Directory,
    Output,
    RegistryWrite,
    SessionConfig,
    UnregisteredPolicy,
    VehicleInfo,
    derive_auth_code,
)
from .gt06 import Gt06Session
from .h02 import H02Session
from .jt808 import Jt808Session

__all__ = [
    "ALARM_KINDS",
    "DEV_AUTH_SECRET",
    "CommandResult",
    "DictDirectory",
    "Directory",
    "Gt06Session",
    "H02Session",
    "Jt808Session",
    "Output",
    "RegistryWrite",
    "SessionConfig",
    "UnregisteredPolicy",
    "VehicleInfo",
    "derive_auth_code",
]
