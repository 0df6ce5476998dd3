"""GB/T 28181 Catalog queries (§9.5.1): ask a registered device for its channels and collect the answer.

The platform sends ``MESSAGE`` with ``<Query><CmdType>Catalog`` to the address the device registered
from (over UDP from the SIP port, so the device's NAT mapping holds; over TCP on the device's open
connection). The device answers ``200 OK``, then sends its list in one or more ``<Response>`` Catalog
MESSAGEs — ``SumNum`` is the total, each message carries some items (NVRs with many channels split the
list, some one item per message). The SIP server answers each ``200 OK`` (the registrar) and hands the
pages here, matched by the device (the authenticated sender) and the query's ``SN``.

A query ends when ``SumNum`` items have arrived (``complete``), when the device refused the MESSAGE
(``refused``), or at the timeout: ``partial`` (some items), ``no_catalog`` (the device said 200 but sent no
list), ``no_answer`` (not even a SIP response). Over UDP the query is retransmitted on RFC 3261's timer E
(0.5, 1, 2, 4, 4 … s) until the device answers. One query per device at a time (a second caller joins
it); a bounded number in flight overall. The last complete list per device is kept in memory (bounded)
and returned alongside a failed query as ``last_complete``.

What this is not: the list is per process (the process the device registered with) and not persisted;
live view over INVITE is not done (docs/dispatch.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from alarmhub_runtime import get_logger

from .protocols import gb28181
from .protocols.gb28181 import SipEvent, SipMessage

__all__ = ["CatalogQueries", "Sender"]

log = get_logger("alarmhub.ingest_camera.catalog")

#: (send bytes, transport name, our local address) for a device's address, or None when unreachable
Sender = Callable[[tuple[str, int]], tuple[Callable[[bytes], None], str, tuple[str, int]] | None]

MAX_ITEMS = 4096
_T1, _T2 = 0.5, 4.0


@dataclass
class _Query:
    device_id: str
    sn: str
    call_id: str
    sum_num: int | None = None
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    pages: int = 0
    sip_status: int | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    heard: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def complete(self) -> bool:
        return self.sum_num is not None and len(self.items) >= min(self.sum_num, MAX_ITEMS)


class CatalogQueries:
    def __init__(
        self,
        *,
        server_id: str,
        realm: str,
        source: Callable[[str, datetime], tuple[str, int] | None],
        sender: Sender,
        now: Callable[[], datetime],
        max_pending: int = 64,
        keep: int = 10_000,
    ) -> None:
        self.server_id = server_id
        self.realm = realm
        self._source = source  # the registrar's: where the device's requests come from
        self._sender = sender
        self._now = now
        self._max_pending = max_pending
        self._keep = keep
        self._by_device: dict[str, _Query] = {}
        self._by_call: dict[str, _Query] = {}
        self._last: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._sn = secrets.randbelow(900_000) + 100_000

    def last(self, device_id: str) -> dict[str, Any] | None:
        return self._last.get(device_id)

    async def query(self, device_id: str, timeout_s: float = 10.0) -> dict[str, Any]:
        """Ask the device for its catalog; the answer as the HTTP endpoint returns it."""
        running = self._by_device.get(device_id)
        if running is not None:  # a second caller joins the query in flight
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(running.done.wait(), timeout_s)
            return self._result(running, "joined")
        peer = self._source(device_id, self._now())
        if peer is None:
            return self._refusal(device_id, "not_registered", "the device is not registered (or expired)")
        how = self._sender(peer)
        if how is None:
            return self._refusal(device_id, "not_connected", "the device's TCP connection is closed")
        if len(self._by_device) >= self._max_pending:
            return self._refusal(device_id, "busy", f"{self._max_pending} catalog queries in flight")
        send, transport, local = how
        self._sn += 1
        q = _Query(device_id, str(self._sn), f"{uuid.uuid4().hex}@{local[0]}")
        self._by_device[device_id] = q
        self._by_call[q.call_id] = q
        data = gb28181.encode_manscdp_request(
            server_id=self.server_id,
            realm=self.realm,
            device_id=device_id,
            body=gb28181.encode_catalog_query_body(device_id, int(q.sn)),
            peer=peer,
            local=local,
            transport=transport,
            call_id=q.call_id,
            branch=uuid.uuid4().hex[:16],
            from_tag=uuid.uuid4().hex[:10],
        )
        retransmit = asyncio.create_task(self._retransmit(q, send, data, transport == "UDP"))
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(q.done.wait(), timeout_s)
        finally:
            retransmit.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await retransmit
            self._by_device.pop(device_id, None)
            self._by_call.pop(q.call_id, None)
        return self._result(q, None)

    async def _retransmit(self, q: _Query, send: Callable[[bytes], None], data: bytes, udp: bool) -> None:
        interval = _T1
        for _ in range(11 if udp else 1):  # timer F (64·T1 = 32 s) bounds UDP retransmissions
            send(data)
            if not udp:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(q.heard.wait(), interval)
                return
            interval = min(interval * 2, _T2)

    def on_response(self, msg: SipMessage) -> None:
        """The device's SIP response to our query MESSAGE (a 2xx, or a refusal that ends the query)."""
        q = self._by_call.get(msg.call_id)
        if q is None or msg.status is None or msg.status < 200:
            return
        q.sip_status = msg.status
        q.heard.set()
        if msg.status >= 300:
            q.done.set()

    def on_catalog(self, event: SipEvent) -> None:
        """A Catalog Response MESSAGE from a registered device (already answered 200 by the server)."""
        q = self._by_device.get(event.device_id)
        if event.message is None or q is None or (event.message.sn or "") != q.sn:
            log.info("catalog_unsolicited", device_id=event.device_id, sn=event.message and event.message.sn)
            return
        try:
            page = gb28181.decode_catalog(event.message, MAX_ITEMS)
        except gb28181.SipError as exc:
            log.warning("catalog_bad_body", device_id=event.device_id, error=str(exc))
            return
        q.heard.set()  # a page proves the query arrived, even if its 200 was lost
        q.pages += 1
        if page.sum_num is not None:  # the same in every page; should they differ, the larger holds
            q.sum_num = max(page.sum_num, q.sum_num or 0)
        for item in page.items:
            if len(q.items) < MAX_ITEMS:
                q.items[item["device_id"]] = item  # a retransmitted page adds nothing twice
        if q.complete:
            q.done.set()

    def _result(self, q: _Query, joined: str | None) -> dict[str, Any]:
        if q.complete:
            status = "complete"
        elif q.sip_status is not None and q.sip_status >= 300:
            status = "refused"
        elif q.items:
            status = "partial"
        elif q.heard.is_set():
            status = "no_catalog"
        else:
            status = "no_answer"
        out: dict[str, Any] = {
            "device_id": q.device_id,
            "status": status,
            "sn": q.sn,
            "sum_num": q.sum_num,
            "pages": q.pages,
            "sip_status": q.sip_status,
            "channels": list(q.items.values()),
            "fetched_at": self._now().isoformat(),
            "message": _MESSAGES[status],
        }
        if joined:
            out["joined"] = True
        if status == "complete" and not joined:
            self._last[q.device_id] = out
            self._last.move_to_end(q.device_id)
            while len(self._last) > self._keep:
                self._last.popitem(last=False)
        elif status != "complete":
            out["last_complete"] = self._last.get(q.device_id)
        return out

    def _refusal(self, device_id: str, status: str, message: str) -> dict[str, Any]:
        return {
            "device_id": device_id,
            "status": status,
            "channels": [],
            "message": message,
            "last_complete": self._last.get(device_id),
        }


_MESSAGES = {
    "complete": "the device listed all its channels",
    "partial": "the device sent part of its list before the timeout",
    "refused": "the device refused the Catalog query",
    "no_catalog": "the device took the query (200 OK) but sent no Catalog response before the timeout",
    "no_answer": "the device did not answer the Catalog query",
}
