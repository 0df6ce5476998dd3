"""The DC-09 receiver's decisions, sans-IO: a frame in, the events to publish and the reply out.

:meth:`Dc09Session.handle` never touches a socket or Kafka and takes the clock as an argument. The
server publishes ``outcome.events`` and only once the broker confirmed them writes
``outcome.reply`` (see ``server.py``); with no events (NULL, retransmission) the reply goes at once.

Replies, in the order the checks run (docs/ingest-contactid.md explains the choices):

===============================================  ===========
frame broken: no LF/CR, CRC or length wrong       none
header unreadable, unknown token                  DUH (none over UDP: no reflection of garbage)
unknown account, policy ``reject``                DUH
encrypted, no key for the account                 DUH
encrypted, cannot decrypt (wrong key)             NAK
account requires encryption, message in clear     NAK
timestamp outside the window                      NAK (with our time)
payload not understood                            DUH
retransmission of an already published message    ACK (nothing published)
replay of a clear message without timestamp       ACK (nothing published, reason ``replay``)
NULL link test                                    ACK
alarm                                             ACK after the broker confirmed the event
===============================================  ===========
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from alarmhub_events import SENSOR, AlarmEvent, Location, Protocol, Sensor, Source
from alarmhub_events.fast import iso_z

from .fastalarm import fast_alarm, fast_source
from .protocols import contactid, dc09, sia

__all__ = ["Account", "Dc09Session", "Outcome", "SessionConfig"]

Result = Literal["ack", "nak", "duh", "dropped"]


@dataclass(frozen=True, slots=True)
class Account:
    """What the receiver needs of a registry account (``accounts`` table)."""

    line: str
    account: str
    company: str = ""
    key: bytes | None = None
    encryption_required: bool = False
    supervision_s: int | None = None
    site_name: str | None = None
    site_address: str | None = None
    lat: float | None = None
    lon: float | None = None
    zones: Mapping[str, Any] = field(default_factory=dict)

    @property
    def device_id(self) -> str:
        return f"L{self.line}#{self.account}"


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """Receiver policy. Defaults follow the standard's recommended window (−20 s / +40 s).

    ``window_past_s``: how old a message timestamp may be; ``window_future_s``: how far ahead of our
    clock. ``check_clear_timestamps``: apply the window to unencrypted messages that carry a timestamp
    too (encrypted ones are always checked: it is the replay protection). ``unknown_accounts``:
    ``accept`` publishes signals of unregistered accounts (flagged), ``reject`` answers DUH.
    ``untimed_replay_s``: how long a published clear message without a timestamp is remembered, so a
    captured copy sent again (over any transport) is ACKed and not published; the timestamp window is
    what bounds replays of every other message.
    """

    receiver: str = "0"
    window_past_s: float = 20.0
    window_future_s: float = 40.0
    check_clear_timestamps: bool = True
    unknown_accounts: Literal["accept", "reject"] = "accept"
    dedup_size: int = 65_536
    untimed_replay_s: float = 86_400.0
    path: str | None = None
    paths: Mapping[str, str] = field(default_factory=dict)

    def path_for(self, receiver: str | None, transport: str | None) -> str | None:
        """``source.path``: the name configured for the receiver number (``R2`` → ``cellular``), else the
        listener's configured path, else the transport (``tcp``/``udp``)."""
        if receiver is not None and f"R{receiver}" in self.paths:
            return self.paths[f"R{receiver}"]
        return self.path or transport


@dataclass(slots=True)
class Outcome:
    """What to do with one frame: publish ``events`` (if any), then send ``reply`` (if any)."""

    result: Result
    token: str
    reply: bytes | None
    events: list[AlarmEvent] = field(default_factory=list)
    reason: str | None = None
    message: dc09.Dc09Message | None = None
    account: Account | None = None
    dedup_key: bytes | None = None
    duplicate: bool = False
    #: another receiver is publishing the same message right now (shared memory): no reply, it retries
    held: bool = False
    #: (line, account) that was not in the registry: the caller may look it up and handle the frame again
    lookup: tuple[str, str] | None = None


_UNKNOWN: Final = "unknown"
_CID, _SIA = Protocol.DC09_CID, Protocol.DC09_SIA  # module constants: enum attribute access is slow


class Dc09Session:
    """Decides the reply to each frame. One instance serves every connection of a receiver, so the
    retransmission memory spans TCP reconnects and UDP."""

    def __init__(
        self,
        config: SessionConfig,
        accounts: Mapping[tuple[str, str], Account] | None = None,
    ) -> None:
        self.config = config
        self.accounts: Mapping[tuple[str, str], Account] = accounts or {}
        self._seen: OrderedDict[bytes, datetime] = OrderedDict()
        self._past = timedelta(seconds=config.window_past_s)
        self._future = timedelta(seconds=config.window_future_s)
        self._horizon = timedelta(seconds=config.window_past_s + config.window_future_s + 300)
        self._untimed_horizon = max(self._horizon, timedelta(seconds=config.untimed_replay_s))
        self._sources: dict[tuple[Protocol, str, str | None, str | None, str | None], Source] = {}

    # ------------------------------------------------------------------------------------ public

    def handle(
        self,
        frame: bytes,
        *,
        now: datetime,
        peer: str | None = None,
        transport: str | None = None,
    ) -> Outcome:
        """Decide what one ``LF … CR`` frame yields. Never raises for any input bytes."""
        outcome = self._handle(frame, now=now, peer=peer, transport=transport)
        if (
            outcome.lookup is None
            and outcome.account is None
            and outcome.message is not None
            and outcome.message.account
        ):
            outcome.lookup = (outcome.message.line_id(), outcome.message.account.upper())
        return outcome

    def add_account(self, account: Account) -> None:
        """Add one account found after the last registry refresh (a lookup on a miss): into the
        registry's own copy when the session holds it (a dict, updated in place), else a copy."""
        key = (account.line, account.account)
        if isinstance(self.accounts, dict):
            self.accounts[key] = account
            return
        accounts = dict(self.accounts)
        accounts[key] = account
        self.accounts = accounts

    def _handle(
        self,
        frame: bytes,
        *,
        now: datetime,
        peer: str | None = None,
        transport: str | None = None,
    ) -> Outcome:
        try:
            body = dc09.decode_frame(frame)
        except dc09.FrameError as exc:
            return Outcome("dropped", _UNKNOWN, None, reason=exc.reason)
        # UDP's source address is whatever the sender wrote: what cannot be parsed gets no answer there, so
        # the receiver cannot be used to reflect traffic at a third party (docs/security.md)
        udp = transport == "udp"
        try:
            header = dc09.decode_header(body)
        except dc09.Dc09Error as exc:
            duh = None if udp else dc09.encode_frame(b'"DUH"0000R0L0[]')
            return Outcome("duh", _UNKNOWN, duh, reason=exc.reason)
        token = header.token if header.token in dc09.KNOWN_TOKENS else _UNKNOWN
        label = ("*" if header.encrypted else "") + token
        if token == _UNKNOWN:
            return Outcome("duh", label, None if udp else dc09.reply_duh(header), reason="token")

        account = self._account(header)
        lookup = (header.line_id(), header.account.upper()) if account is None and header.account else None
        if account is None and self.config.unknown_accounts == "reject":
            return Outcome("duh", label, dc09.reply_duh(header), reason="unknown_account", lookup=lookup)
        key = account.key if account is not None else None
        if header.encrypted and key is None:
            return Outcome(
                "duh", label, dc09.reply_duh(header), reason="no_key", account=account, lookup=lookup
            )
        try:
            msg = dc09.decode_message(header, key)
        except dc09.DecryptError as exc:
            return Outcome("nak", label, self._nak(header, now), reason=exc.reason, account=account)
        except dc09.Dc09Error as exc:
            return Outcome("duh", label, dc09.reply_duh(header), reason=exc.reason, account=account)
        if account is not None and account.encryption_required and not msg.encrypted:
            return Outcome(
                "nak", label, self._nak(header, now), reason="clear_rejected", account=account, message=msg
            )
        if msg.timestamp is not None and (msg.encrypted or self.config.check_clear_timestamps):
            if not self._in_window(msg.timestamp, now):
                return Outcome(
                    "nak",
                    label,
                    self._nak(header, now),
                    reason="timestamp_window",
                    account=account,
                    message=msg,
                )
        ack = dc09.reply(msg, now=now, key=key)
        if token == "NULL":
            return Outcome("ack", label, ack, message=msg, account=account)

        path = self.config.path_for(msg.receiver_id(), transport)
        # the configured path (receiver number or listener), never the transport: a frame captured on TCP
        # and sent again over UDP is the same message
        dedup_key = self._dedup_key(msg, self.config.path_for(msg.receiver_id(), None))
        seen = self._retransmitted(dedup_key, now, untimed=msg.timestamp is None)
        if seen is not None:
            return Outcome("ack", label, ack, message=msg, account=account, reason=seen, duplicate=True)
        try:
            events = self._events(msg, account, frame, now=now, peer=peer, path=path)
        except dc09.Dc09Error as exc:
            return Outcome(
                "duh", label, dc09.reply_duh(header), reason=exc.reason, account=account, message=msg
            )
        except ValueError:  # the event model refused a field (pydantic): we do not understand it
            return Outcome(
                "duh", label, dc09.reply_duh(header), reason="payload", account=account, message=msg
            )
        return Outcome("ack", label, ack, events=events, message=msg, account=account, dedup_key=dedup_key)

    def published(self, outcome: Outcome, now: datetime) -> None:
        """Remember a message whose events the broker confirmed, so a retransmission is ACKed only."""
        if outcome.dedup_key is None:
            return
        self._seen[outcome.dedup_key] = now
        self._seen.move_to_end(outcome.dedup_key)
        while len(self._seen) > self.config.dedup_size:
            self._seen.popitem(last=False)

    # ----------------------------------------------------------------------------------- helpers

    def _account(self, header: dc09.Dc09Header) -> Account | None:
        if header.account is None:
            return None
        return self.accounts.get((header.line_id(), header.account.upper()))

    def _nak(self, header: dc09.Dc09Header, now: datetime) -> bytes:
        return dc09.reply_nak(now=now, receiver=header.receiver, line=header.line)

    def _in_window(self, ts: datetime, now: datetime) -> bool:
        return now - self._past <= ts <= now + self._future

    @staticmethod
    def _dedup_key(msg: dc09.Dc09Message, path: str | None) -> bytes:
        # Same account, sequence and content (the timestamp included: a transmitter retrying after a
        # lost ACK resends the identical message; a new event reusing the sequence differs).
        text = "\x1f".join(
            (
                msg.device_id(),
                path or "",
                msg.seq,
                msg.token,
                msg.data,
                *msg.extended,
                iso_z(msg.timestamp) if msg.timestamp else "",
            )
        )
        return hashlib.blake2b(text.encode(), digest_size=16).digest()

    def _retransmitted(self, key: bytes, now: datetime, *, untimed: bool) -> str | None:
        """``retransmission`` or ``replay`` (a clear untimed message seen longer ago), else None."""
        seen = self._seen.get(key)
        if seen is None:
            return None
        age = now - seen
        if age <= self._horizon:
            return "retransmission"
        if untimed and age <= self._untimed_horizon:
            return "replay"
        del self._seen[key]
        return None

    def _source(self, msg: dc09.Dc09Message, *, peer: str | None, path: str | None) -> Source:
        """The event's source. Source is frozen and the same for every message of a transmitter on one
        connection: one object per identity (the memo is bounded and starts afresh when full)."""
        receiver = msg.receiver_id()
        protocol = _CID if msg.token == "ADM-CID" else _SIA
        device_id = msg.device_id()
        skey = (protocol, device_id, receiver, path, peer)
        source = self._sources.get(skey)
        if source is None:
            source = fast_source(
                protocol=protocol,
                device_id=device_id,
                account=(msg.account or "").upper() or None,
                receiver=f"R{receiver}" if receiver is not None else None,
                line=f"L{msg.line_id()}",
                path=path,
                peer=peer,
            )
            if len(self._sources) >= 65_536:
                self._sources.clear()
            self._sources[skey] = source
        return source

    def _events(
        self,
        msg: dc09.Dc09Message,
        account: Account | None,
        frame: bytes,
        *,
        now: datetime,
        peer: str | None,
        path: str | None,
    ) -> list[AlarmEvent]:
        source = self._source(msg, peer=peer, path=path)
        occurred = msg.timestamp or now
        location = None
        if account is not None and account.lat is not None and account.lon is not None:
            location = Location(lat=account.lat, lon=account.lon, source="registry")
        base = _base_attributes(msg, account)
        raw = frame.decode("ascii", "replace").strip("\r\n")
        events: list[AlarmEvent] = []
        if msg.token == "ADM-CID":
            cid = contactid.decode(msg.data)
            attrs = {
                **base,
                "partition": cid.partition,
                "description": cid.description,
                "number_is": cid.concerns,
            }
            _zone_name(attrs, account, cid.number if cid.concerns == "zone" else None)
            events.append(
                fast_alarm(
                    kind=cid.kind,
                    qualifier=cid.qualifier,
                    source=source,
                    code=cid.code,
                    zone=cid.number,
                    occurred_at=occurred,
                    received_at=now,
                    location=location,
                    attributes=attrs,
                    raw=raw,
                )
            )
        else:
            _, sia_events = sia.decode(msg.data)
            for i, ev in enumerate(sia_events):
                attrs = {
                    **base,
                    "description": ev.description,
                    **{f"sia_{k}": v for k, v in ev.modifiers.items()},
                }
                if "ri" in ev.modifiers:
                    attrs["partition"] = ev.modifiers["ri"]
                if ev.text:
                    attrs["text"] = ev.text
                if len(sia_events) > 1:
                    attrs["index"] = i
                _zone_name(attrs, account, ev.number)
                events.append(
                    fast_alarm(
                        kind=ev.kind,
                        qualifier=ev.qualifier,
                        source=source,
                        code=ev.code,
                        zone=ev.number,
                        occurred_at=occurred,
                        received_at=now,
                        location=location,
                        attributes=attrs,
                        raw=raw,
                    )
                )
        return events


def _base_attributes(msg: dc09.Dc09Message, account: Account | None) -> dict[str, Any]:
    """The attributes every event of one message carries: sequence, encryption, extended data, registry."""
    base: dict[str, Any] = {"seq": msg.seq, "encrypted": msg.encrypted}
    if msg.extended:
        base["extended"] = list(msg.extended)
    if account is None:
        base["registry"] = "unknown_account"
    else:
        base["company"] = account.company
        if account.site_name:
            base["site_name"] = account.site_name
    return base


_SENSORS = {m.value: m.value for m in Sensor}


def _zone_name(attrs: dict[str, Any], account: Account | None, zone: str | None) -> None:
    """Add the registry's description of a zone (keys may be ``"001"`` or ``"1"``): its name, and its
    detector's sensing principle as ``attributes.sensor`` (``alarmhub_events.Sensor``) when the registry
    says (``{"1": {"name": "hall", "sensor": "pir"}}``; a plain string is the name alone)."""
    if account is None or not zone or not account.zones:
        return
    entry = account.zones.get(zone) or account.zones.get(zone.lstrip("0") or "0")
    if isinstance(entry, Mapping):
        name = entry.get("name")
        sensor = _SENSORS.get(str(entry.get("sensor") or "").strip().lower())
        if sensor is not None:
            attrs[SENSOR] = sensor
    else:
        name = entry
    if name:
        attrs["zone_name"] = name if isinstance(name, str) else str(name)
