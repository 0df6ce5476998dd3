"""Wiring of the DC-09 receiver: producer, account registry, session, listeners, supervision.

Start: producer (waits for the broker), registry (best effort: the receiver also runs on an empty
registry and keeps retrying), listeners, background loops. Stop: stop accepting, let in-flight frames
finish (their ACKs wait on the broker), stop the loops, flush and stop the producer.
"""

from __future__ import annotations

import asyncio
import os
import socket
from datetime import datetime

import asyncpg
from alarmhub_events import ALARMS_RAW, DEVICES_STATUS, utcnow
from alarmhub_kafka import DurableProducer, KafkaMetrics, KafkaSecurity, PublishError
from alarmhub_redis import connect_redis, redis_address
from alarmhub_runtime import HealthServer, connection_budget, get_logger
from alarmhub_store import RegistryListener, notice_row
from prometheus_client import CollectorRegistry

from .config import ContactIdSettings
from .metrics import ContactIdMetrics
from .registry import AccountRegistry
from .server import Dc09Receiver, Dc09Server
from .session import Dc09Session, Outcome, SessionConfig
from .shared import SharedState
from .supervision import Supervisor, Transition

__all__ = ["ContactIdApp"]

log = get_logger("alarmhub.ingest_contactid")


class ContactIdApp:
    def __init__(self, settings: ContactIdSettings, registry: CollectorRegistry) -> None:
        self.settings = settings
        self.metrics = ContactIdMetrics(registry)
        # linger (default 0): transmitters wait for each ACK, so every millisecond the producer holds a batch
        # is a millisecond of ACK latency; concurrent connections fill the next request while one is in
        # flight anyway, and a held batch cost CPU too (docs/ingest-contactid.md, "linger 0")
        self.producer = DurableProducer(
            settings.kafka_bootstrap,
            metrics=KafkaMetrics(registry),
            client_id="ingest-contactid",
            topic_prefix=settings.topic_prefix,
            service="ingest-contactid",
            enable_idempotence=settings.kafka_idempotence,
            linger_ms=settings.kafka_linger_ms,
            security=KafkaSecurity.from_settings(settings),
        )
        self.session = Dc09Session(
            SessionConfig(
                receiver=settings.dc09_receiver,
                window_past_s=settings.window_past_s,
                window_future_s=settings.window_future_s,
                check_clear_timestamps=settings.check_clear_timestamps,
                untimed_replay_s=settings.untimed_replay_s,
                unknown_accounts=settings.unknown_accounts,
                path=settings.dc09_path,
                paths=settings.paths(),
            )
        )
        self.supervisor = Supervisor(utcnow())
        self.shared: SharedState | None = None
        if settings.shared_state:
            self.shared = SharedState(
                connect_redis(redis_address(settings), timeout_s=settings.redis_timeout_s),
                settings.key_prefix,
                node=settings.node_id or f"{socket.gethostname()}:{os.getpid()}",
                metrics=self.metrics,
                horizon_s=settings.window_past_s + settings.window_future_s + 300,
                pending_s=settings.pending_s,
                confirm_delay_s=settings.confirm_delay_ms / 1000,
            )
        #: misses this receiver published while the shared state was down (its recovery is ours too)
        self._local_missed: dict[str, datetime] = {}
        self.registry = AccountRegistry(settings.database_url) if settings.dc09_registry else None
        self.receiver = Dc09Receiver(
            self.session,
            self.producer,
            self.metrics,
            on_message=self._heard,
            resolve=self.registry.lookup if self.registry is not None else None,
            recently_missed=self.registry.recently_missed if self.registry is not None else None,
            shared=self.shared,
        )
        self.server = Dc09Server(
            self.receiver,
            self.metrics,
            host=settings.dc09_host,
            port=settings.dc09_port,
            max_frame=settings.max_frame,
            idle_timeout_s=settings.idle_timeout_s,
            max_connections=settings.max_connections or connection_budget(),
            max_connections_per_peer=settings.max_connections_per_peer,
        )
        self.registry_loaded = asyncio.Event()
        # dispatch's NOTIFY on every accounts write: a key or account created through the API works at once;
        # the refresh timer stays as the fallback
        self.listener = (
            RegistryListener(settings.database_url, self._accounts_changed, tables={"accounts"})
            if self.registry is not None
            else None
        )
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def port(self) -> int:
        """The bound DC-09 port (TCP and UDP), known after :meth:`start`."""
        return self.server.port

    def add_checks(self, health: HealthServer) -> None:
        health.add_check("kafka", self.producer.ready)

    async def start(self) -> None:
        await self.producer.start()
        await self.refresh_accounts()
        if self.listener is not None:
            await self.listener.start()
        await self.server.start()
        self._tasks = [
            asyncio.create_task(self._refresh_loop(), name="dc09-registry"),
            asyncio.create_task(self._supervision_loop(), name="dc09-supervision"),
        ]

    async def stop(self) -> None:
        await self.server.stop_accepting()
        await self.server.drain(timeout=self.settings.shutdown_grace_s / 2)
        if self.listener is not None:
            await self.listener.stop()
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        # bounded: a client library that swallows a cancellation (redis-py inside a pipeline call) must
        # not hold the shutdown; the loops also end on ``_stopping``
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
        await self.producer.stop()
        if self.shared is not None:
            await self.shared.close()
        if self.registry is not None:
            await self.registry.close()

    # ----------------------------------------------------------------------------------- registry

    async def refresh_accounts(self, one: tuple[str, str] | None = None) -> bool:
        """Bring the registry copy up to date (only ``one`` stored (line, account) when given); on
        failure keep the last good copy. Returns whether it loaded."""
        if self.registry is None:
            self.registry_loaded.set()
            return True
        try:
            changes = await (self.registry.reload(*one) if one else self.registry.refresh())
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("account_registry_unavailable", error=repr(exc))
            return False
        accounts = self.registry.accounts
        self.session.accounts = accounts  # the same dict, updated in place
        if changes:
            self.supervisor.update(changes.changed, changes.gone, utcnow())
        self.metrics.accounts.set(len(accounts))
        if not self.registry_loaded.is_set():
            log.info("account_registry_loaded", accounts=len(accounts))
        self.registry_loaded.set()
        return True

    async def _accounts_changed(self, table: str | None) -> None:
        """dispatch's notice: ``accounts`` (any row may have changed), ``accounts:["<line>", "<account>"]``
        (that row), or None (the LISTEN connection came back)."""
        if self.registry is not None:
            self.registry.forget_misses()  # an account just created must not wait out a remembered miss
        key = notice_row(table)[1] if table is not None else None
        await self.refresh_accounts((key[0], key[1]) if key is not None and len(key) == 2 else None)

    async def _refresh_loop(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.settings.accounts_refresh_s)
            await self.refresh_accounts()

    # -------------------------------------------------------------------------------- supervision

    def _heard(self, outcome: Outcome, now: datetime) -> None:
        if outcome.message is not None:
            device_id = outcome.message.device_id()
            self.supervisor.seen(device_id, now)
            # 'last' in Redis has one reader, the supervision of the other receivers: an account without
            # an interval is never read there (bench/dc09.py's accounts cost an EVAL each per flush). One
            # supervised later counts its first deadline from when the receivers learned of it.
            if self.shared is not None and self.supervisor.supervises(device_id):
                self.shared.heard(device_id, now)

    async def check_supervision(self, now: datetime | None = None) -> int:
        """Publish supervision misses and recoveries that are due; returns how many were published.

        With shared state, every receiver's polls count (``last`` in Redis) and each transition is
        published by the one receiver that takes it (``missed`` key): N receivers raise one miss.
        """
        shared = self.shared
        now = now or utcnow()
        if shared is not None:
            await shared.flush_heard()
            # only the accounts whose state could change read the shared state (Supervisor.candidates):
            # all of them every check was a GET pair per supervised account every few seconds
            ids = self.supervisor.candidates(now)
            snap = await shared.snapshot(ids)
            if snap is not None:
                wanted = set(ids)
                local = {d: at for d, at in self._local_missed.items() if d in wanted}
                self.supervisor.merge(snap[0], {**local, **snap[1]}, ids)
        transitions = self.supervisor.check(now)
        if not transitions:
            return 0
        ours = []
        for t in transitions:
            took = await shared.transition(t.device_id, t.state, t.at) if shared is not None else None
            if took is False and not (t.state == "restored" and t.device_id in self._local_missed):
                continue  # another receiver published it
            ours.append((t, took))
        self.supervisor.commit(transitions)  # the others' transitions are known; ours are undone on failure
        if not ours:
            return 0
        items = []
        for t, _ in ours:
            status, alarm = t.events(self.settings.dc09_receiver)
            items += [(DEVICES_STATUS, status, status.key), (ALARMS_RAW, alarm, alarm.key)]
        try:
            await self.producer.send_many(items)
        except PublishError as exc:
            log.warning("supervision_publish_failed", error=str(exc), transitions=len(ours))
            self.supervisor.commit([_reverse(t) for t, _ in ours])
            for t, took in ours:
                if shared is not None and took:
                    await shared.undo(t.device_id, t.state, t.at)
            return 0
        for t, took in ours:
            if t.state == "missed" and took is None:
                self._local_missed[t.device_id] = t.at
            elif t.state == "restored":
                self._local_missed.pop(t.device_id, None)
        transitions = [t for t, _ in ours]
        for t in transitions:
            if t.state == "missed":
                self.metrics.supervision_misses.inc()
            log.info("supervision_" + t.state, device_id=t.device_id, last_seen=t.last_seen.isoformat())
        return len(transitions)

    async def _supervision_loop(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.settings.supervision_check_s)
            try:
                await self.check_supervision()
            except Exception:  # never let the loop die silently
                log.exception("supervision_check_failed")


def _reverse(t: Transition) -> Transition:
    """The transition that puts the supervisor back where it was (a publish failed: propose it again)."""
    return Transition(
        t.device_id, "restored" if t.state == "missed" else "missed", t.account, t.last_seen, t.at
    )
