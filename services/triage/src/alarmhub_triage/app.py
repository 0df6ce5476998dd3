"""Wiring of the triage service: the only module that knows every part.

- ``alarms.raw`` (group ``triage``) → :class:`Pipeline` → ``alarms.triaged`` keyed by incident id,
  published with ``send_many`` before the handler returns: offsets are committed only after the
  broker has every decision of the batch (at-least-once; decision ids are stable across replays).
- ``incidents.events`` (group ``triage-verdicts``) → close verdicts and verification outcomes → each
  device's false-alarm history in Redis (each incident counted once, with its latest verdict).
- The rules file is checked every ``rules_reload_s``; a valid new version replaces the active one
  between batches, an invalid one is logged and counted and the previous rules stay.

Stop order: stop consuming (the batch in hand finishes, is published and committed), flush the
producer, close Redis.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Sequence
from typing import Any

from alarmhub_events import (
    ALARMS_RAW,
    ALARMS_TRIAGED,
    INCIDENTS_EVENTS,
    AlarmEvent,
    Decision,
    IncidentEvent,
    IncidentEventType,
    Verdict,
)
from alarmhub_kafka import (
    Coalescer,
    ConsumerPipeline,
    DurableProducer,
    KafkaMetrics,
    Message,
    TransientError,
)
from alarmhub_redis import connect_redis, redis_address
from alarmhub_runtime import HealthServer, get_logger
from prometheus_client import CollectorRegistry
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .config import TriageSettings
from .metrics import TriageMetrics
from .pipeline import BatchResult, Pipeline
from .ruleset import RulesError, RuleSet, load_rules
from .state import TriageState

__all__ = ["TriageApp", "may_teach", "verdict_of"]

log = get_logger("alarmhub.triage")


_VERDICT_LABEL = {"g": "genuine", "f": "false_alarm", "n": "test"}


def verdict_of(ev: IncidentEvent) -> str | None:
    """What an incident event teaches about its device: 'g' genuine, 'f' false, 'n' neither (a test), None nothing.

    A verification call-back (``verified``) counts at once: ``confirmed`` as genuine, ``false`` as a false
    alarm (``unreachable`` says nothing). The close verdict that may follow replaces it (latest wins).
    """
    if ev.type == IncidentEventType.CLOSED:
        return (
            {Verdict.GENUINE: "g", Verdict.FALSE_ALARM: "f", Verdict.TEST: "n"}.get(ev.verdict)
            if ev.verdict
            else None
        )
    if ev.type == IncidentEventType.VERIFIED:
        return {"confirmed": "g", "false": "f"}.get(str(ev.data.get("outcome")))
    return None


def may_teach(raw: bytes) -> bool:
    """Whether an ``incidents.events`` record may be a close or a verification (:func:`verdict_of`), from its
    bytes: any JSON writer puts the type as the string ``"closed"`` / ``"verified"``. The other events (most:
    opened, routed, updated …) are then not validated at all; a false yes only costs the decode."""
    return b'"closed"' in raw or b'"verified"' in raw


class TriageApp:
    def __init__(self, settings: TriageSettings, registry: CollectorRegistry) -> None:
        self.settings = settings
        self.metrics = TriageMetrics(registry)
        self.kafka_metrics = KafkaMetrics(registry)
        self.rules: RuleSet = load_rules(settings.rules_path)  # invalid rules stop the start-up here
        self._rules_mtime = self._mtime()
        self.metrics.rules_loaded_at.set_to_current_time()
        self.redis = connect_redis(redis_address(settings), timeout_s=5)
        self.state = TriageState(
            self.redis, settings.key_prefix, ttl_s=int(self.rules.longest_window_s) + 600
        )
        self.pipeline = Pipeline(self.state, lambda: self.rules, chunk=settings.chunk)
        self.producer = DurableProducer.from_settings(
            settings, metrics=self.kafka_metrics, client_id="triage"
        )
        self.consumer = ConsumerPipeline.from_settings(
            settings,
            topics=[ALARMS_RAW],
            model=AlarmEvent,
            handler=self.handle,
            producer=self.producer,
            metrics=self.kafka_metrics,
            client_id="triage",
            max_records=settings.max_records,
        )
        self.verdicts = ConsumerPipeline.from_settings(
            settings,
            group_suffix="-verdicts",
            topics=[INCIDENTS_EVENTS],
            model=IncidentEvent,
            handler=self.handle_verdicts,
            wanted=may_teach,
            # verdicts teach the next alarms, not this one: no need to ask the broker 20 times a second
            fetch_max_wait_ms=settings.verdicts_fetch_wait_ms,
            producer=self.producer,
            metrics=self.kafka_metrics,
            client_id="triage-verdicts",
        )
        self._reload_task: asyncio.Task[None] | None = None
        self._redis_ok = False
        self._joined: Coalescer[Message[Any]] | None = Coalescer(self._triage) if settings.coalesce else None

    # -- lifecycle -------------------------------------------------------------------------------
    def add_checks(self, health: HealthServer) -> None:
        health.add_check("kafka_producer", self.producer.ready)
        health.add_check("alarms_consumer", self.consumer.ready)
        health.add_check("redis", self._ping)

    async def _ping(self) -> bool:
        try:
            self._redis_ok = await self.state.ping()
        except Exception:
            self._redis_ok = False
        return self._redis_ok

    async def start(self) -> None:
        log.info(
            "rules_loaded",
            rule_version=self.rules.rule_version,
            path=str(self.settings.rules_path or "default"),
        )
        await self.producer.start()
        # Joining a group takes seconds on the dev broker: join both groups at once.
        await asyncio.gather(self.consumer.start(), self.verdicts.start())
        self._reload_task = asyncio.create_task(self._reload_loop(), name="triage:rules-reload")

    async def stop(self) -> None:
        if self._reload_task is not None:
            self._reload_task.cancel()
        await asyncio.gather(self.consumer.stop(), self.verdicts.stop())
        await self.producer.stop()
        await self.redis.aclose()

    # -- alarms.raw → alarms.triaged -----------------------------------------------------------
    async def handle(self, msgs: Sequence[Message[Any]]) -> None:
        """One partition's batch: triage it, publish every decision, return (the pipeline then commits).

        With ``ALARMHUB_TRIAGE_COALESCE`` (the default) the batches the poll's other partitions hand over at
        the same moment are triaged with it in one run (:class:`alarmhub_kafka.Coalescer`): one Redis script
        call and one produce call for the poll instead of one each per partition. Each partition's order is
        kept, a joint run that fails is retried per partition (each hears its own outcome), and this returns
        only once the run that carried ``msgs`` had every decision confirmed by the broker."""
        t0 = asyncio.get_running_loop().time()
        if self._joined is not None:
            await self._joined.submit(msgs)
        else:
            await self._triage(msgs)
        self.metrics.batch_seconds.observe(asyncio.get_running_loop().time() - t0)

    async def _triage(self, msgs: Sequence[Message[Any]]) -> None:
        """Triage ``msgs`` (one partition's records, or several partitions' joined, each in order)."""
        try:
            # Each chunk's decisions go to the producer as soon as they are made (the broker writes them
            # while the next chunk is triaged); run returns once the broker confirmed every one (acks=all).
            res = await self.pipeline.run(
                [m.value for m in msgs], [m.raw for m in msgs], publish=self._publish
            )
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise TransientError(
                f"redis unavailable: {exc!r}"
            ) from exc  # retried with backoff, not committed
        # Anything else (a bug tripped by one event, a value a stage cannot take) is judged by the consumer
        # pipeline (alarmhub_kafka): it splits the batch until the event is alone and dead-letters it, and
        # the rest of the batch flows. Re-running part of a batch is safe: dedup and incident ids are keyed
        # by event id. PublishError (the broker did not confirm a decision) is transient: retried.
        self._count(len(msgs), res)

    async def _publish(self, decisions: list[tuple[str, bytes]]) -> None:
        """One chunk's decisions (JSON written from the items, no pydantic round trip) through the producer's
        batch API, awaited until the broker acknowledged all of them (acks=all)."""
        await self.producer.send_raw_many([(ALARMS_TRIAGED, value, key) for key, value in decisions])

    def _count(self, n: int, res: BatchResult) -> None:
        """Metrics once per label per batch, not per decision."""
        m = self.metrics
        m.events.inc(n)
        for reason, k in res.dropped.items():
            m.dropped.labels(reason).inc(k)
        by_decision: Counter[str] = Counter()
        suppressed: Counter[str] = Counter()
        majors = 0
        for it in res.decided:
            by_decision[it.decision or ""] += 1
            m.score.observe(it.score)
            majors += it.major_event
            if it.decision == Decision.SUPPRESS.value:
                neg = [r for r in it.reasons if r.weight is not None and r.weight < 0]
                suppressed[min(neg, key=lambda r: r.weight or 0).code if neg else "low_score"] += 1
        for d, k in by_decision.items():
            m.decisions.labels(d).inc(k)
        for code, k in suppressed.items():
            m.suppressed.labels(code).inc(k)
        if majors:
            m.major_events.inc(majors)
        log.debug("batch_triaged", events=n, decisions=len(res.decided), rule_version=res.rule_version)

    # -- incidents.events → false-alarm history -------------------------------------------------
    async def handle_verdicts(self, msgs: Sequence[Message[Any]]) -> None:
        """Dispatchers' verdicts and call-back outcomes → the device's genuine/false counts (latest per incident;
        an event older than the incident's last counted one, by ``seq``, is ignored)."""
        items: list[tuple[str, str, str, int]] = []
        for m in msgs:
            ev: IncidentEvent = m.value
            v = verdict_of(ev)
            if v is not None and ev.source_device_id is not None:
                items.append((str(ev.incident_id), ev.source_device_id, v, ev.seq or 0))
        if items:
            await self.state.record_verdicts(items)
            for _, _, v, _ in items:
                self.metrics.verdicts.labels(_VERDICT_LABEL[v]).inc()

    # -- hot reload -----------------------------------------------------------------------------
    def _mtime(self) -> float | None:
        p = self.settings.rules_path
        try:
            return os.stat(p).st_mtime_ns if p is not None else None
        except OSError:
            return None

    def reload_rules(self) -> bool:
        """Load the rules file again if it changed; keep the active rules when the new file is invalid."""
        mtime = self._mtime()
        if mtime is None or mtime == self._rules_mtime:
            return False
        self._rules_mtime = mtime
        try:
            rules = load_rules(self.settings.rules_path)
        except RulesError as exc:
            self.metrics.rule_reloads.labels("invalid").inc()
            log.error("rules_reload_rejected", error=str(exc)[:500], active=self.rules.rule_version)
            return False
        if rules.rule_version != self.rules.rule_version:
            log.info("rules_reloaded", previous=self.rules.rule_version, rule_version=rules.rule_version)
        self.rules = rules
        self.state.ttl_s = max(self.state.ttl_s, int(rules.longest_window_s) + 600)
        self.metrics.rule_reloads.labels("ok").inc()
        self.metrics.rules_loaded_at.set_to_current_time()
        return True

    async def _reload_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.rules_reload_s)
            try:
                self.reload_rules()
            except Exception as exc:  # never let a reload problem kill the service
                log.error("rules_reload_failed", error=repr(exc))
