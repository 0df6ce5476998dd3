"""``alarmhub-dlq``: list, show and replay dead letters (``alarms.dlq``) after a fix.

    alarmhub-dlq list [--since 2h] [--service dispatch] [--stage process] [--kind panic] [--life-safety]
    alarmhub-dlq show 3:1187
    alarmhub-dlq replay 3:1187 5:20 [--dry-run]
    alarmhub-dlq replay --since 2h --service dispatch [--dry-run]

A dead letter is addressed by its place in ``alarms.dlq``, ``partition:offset``. ``replay`` writes each
selected record's raw bytes back to the topic it was consumed from (``source_topic``), with its original
key, and waits for the broker (acks=all); the consumer group then handles it like any new record. Dead
letters written by the ingest services (a frame that could not be decoded, no source topic) are listed but
cannot be replayed: the device must send again. Replay only after the cause was fixed: a record that
still fails goes to the DLQ again, with a new position. The tool reads ``alarms.dlq`` without a consumer
group and changes nothing there.

Settings: ``KAFKA_BOOTSTRAP`` (default ``127.0.0.1:9092``) and ``ALARMHUB_TOPIC_PREFIX`` from the
environment, or ``--bootstrap`` / ``--prefix``. Exit status: 0 done, 1 a selected record could not be
replayed or was not found, 2 usage or broker error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from alarmhub_events import ALARMS_DLQ, LIFE_SAFETY_KINDS, DlqRecord
from alarmhub_runtime import BaseServiceSettings
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from ._metrics import KafkaMetrics
from ._producer import DurableProducer
from ._security import PLAINTEXT, KafkaSecurity
from .errors import PublishError

__all__ = ["main"]

_LIFE_SAFETY = frozenset(k.value for k in LIFE_SAFETY_KINDS)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    partition: int
    offset: int
    record: DlqRecord

    @property
    def position(self) -> str:
        return f"{self.partition}:{self.offset}"


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``90s``, ``15m``, ``2h``, ``3d`` ago, or an ISO 8601 instant (UTC when no zone is given)."""
    now = now or datetime.now(UTC)
    m = re.fullmatch(r"(\d+)([smhd])", text.strip())
    if m:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[m.group(2)]
        return now - timedelta(**{unit: int(m.group(1))})
    when = datetime.fromisoformat(text.strip())
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


async def read_dead_letters(
    bootstrap: str,
    topic: str,
    *,
    since: datetime | None = None,
    timeout_s: float = 30.0,
    security: KafkaSecurity = PLAINTEXT,
) -> list[DeadLetter]:
    """Every record of ``topic`` (from ``since`` on) up to its current end, in partition and offset order."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        group_id=None,
        auto_offset_reset="earliest",
        **security.client_kwargs(),
    )
    await consumer.start()
    out: list[DeadLetter] = []
    try:
        if topic not in await consumer.topics():  # also loads the cluster's metadata
            raise ValueError(f"no topic {topic} on {bootstrap}")
        parts = sorted(consumer.partitions_for_topic(topic) or ())
        tps = [TopicPartition(topic, p) for p in parts]
        if not tps:
            return out
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        if since is not None:
            found = await consumer.offsets_for_times({tp: int(since.timestamp() * 1000) for tp in tps})
            for tp in tps:
                hit = found.get(tp)
                consumer.seek(tp, hit.offset if hit is not None else ends[tp])
        else:
            # offset 0, not seek_to_beginning: the dev broker sometimes answers the earliest offset with the
            # end; on Kafka an offset retention has removed is reset to the earliest kept (auto_offset_reset)
            for tp in tps:
                consumer.seek(tp, 0)
        deadline = time.monotonic() + timeout_s
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic} not read to its end within {timeout_s} s")
            batches = await consumer.getmany(timeout_ms=500, max_records=1000)
            for tp, recs in batches.items():
                for rec in recs:
                    if rec.offset >= ends[tp]:
                        continue
                    try:
                        out.append(
                            DeadLetter(tp.partition, rec.offset, DlqRecord.from_bytes(rec.value or b""))
                        )
                    except ValidationError as exc:
                        print(f"{tp.partition}:{rec.offset} is not a DLQ record: {exc}", file=sys.stderr)
    finally:
        await consumer.stop()
    out.sort(key=lambda d: (d.partition, d.offset))
    return out


def select(
    letters: Sequence[DeadLetter],
    *,
    service: str | None = None,
    stage: str | None = None,
    kind: str | None = None,
    life_safety: bool = False,
) -> list[DeadLetter]:
    return [
        d
        for d in letters
        if (service is None or d.record.service == service)
        and (stage is None or d.record.stage == stage)
        and (kind is None or d.record.kind == kind)
        and (not life_safety or d.record.kind in _LIFE_SAFETY)
    ]


def _line(d: DeadLetter) -> str:
    r = d.record
    source = f"{r.source_topic}/{r.source_partition}/{r.source_offset}" if r.source_topic else r.source_id
    error = r.error.replace("\n", " ")
    return (
        f"{d.position:<10} {r.occurred_at.isoformat(timespec='seconds')} {r.service:<16} {r.stage:<8} "
        f"{r.kind or '-':<13} {source}  {error[:160]}"
    )


def _show(d: DeadLetter) -> str:
    doc = d.record.model_dump(mode="json", by_alias=True, exclude_none=True)
    raw = d.record.raw_bytes()
    doc["raw_text"] = raw.decode("utf-8", "backslashreplace")
    doc["dlq_position"] = d.position
    doc["replayable"] = d.record.source_topic is not None
    return json.dumps(doc, ensure_ascii=False, indent=2)


async def replay(
    bootstrap: str, letters: Sequence[DeadLetter], security: KafkaSecurity = PLAINTEXT
) -> tuple[int, list[str]]:
    """Write each letter's raw bytes back to its source topic (already prefixed), acks=all."""
    problems = [
        f"{d.position}: no source topic (an ingest-side dead letter: the device must send again)"
        for d in letters
        if not d.record.source_topic
    ]
    todo = [d for d in letters if d.record.source_topic]
    if not todo:
        return 0, problems
    producer = DurableProducer(
        bootstrap,
        metrics=KafkaMetrics(CollectorRegistry()),
        client_id="alarmhub-dlq",
        service="alarmhub-dlq",
        security=security,
    )
    await producer.start()
    done = 0
    try:
        for d in todo:
            r = d.record
            try:
                await producer.send_raw(r.source_topic or "", r.raw_bytes(), r.source_key)
            except PublishError as exc:
                problems.append(f"{d.position}: not confirmed by the broker: {exc}")
                continue
            done += 1
            print(f"replayed {d.position} → {r.source_topic} key={r.source_key or '-'}")
    finally:
        await producer.stop()
    return done, problems


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="alarmhub-dlq", description="List, show and replay dead letters.")
    p.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092"))
    p.add_argument("--prefix", default=os.environ.get("ALARMHUB_TOPIC_PREFIX", ""), help="topic prefix")
    sub = p.add_subparsers(dest="command", required=True)

    def filters(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--since", help="90s, 15m, 2h, 3d or an ISO 8601 instant")
        sp.add_argument("--service", help="the service that dead-lettered (triage, dispatch, ingest-gps …)")
        sp.add_argument("--stage", help="decode, process …")
        sp.add_argument("--kind", help="alarm kind (panic, fire …)")
        sp.add_argument(
            "--life-safety", action="store_true", help="panic, duress, fire, medical, vehicle SOS"
        )

    ls = sub.add_parser("list", help="one line per dead letter")
    filters(ls)
    ls.add_argument("--json", action="store_true", help="one JSON document per line")
    show = sub.add_parser("show", help="one dead letter in full, raw bytes included")
    show.add_argument("position", help="partition:offset in alarms.dlq")
    rp = sub.add_parser("replay", help="write dead letters back to their source topic")
    rp.add_argument("positions", nargs="*", help="partition:offset in alarms.dlq (else: every selected one)")
    filters(rp)
    rp.add_argument("--dry-run", action="store_true", help="say what would be replayed")
    return p


def _positions(values: Sequence[str]) -> set[tuple[int, int]]:
    out = set()
    for v in values:
        m = re.fullmatch(r"(\d+):(\d+)", v)
        if not m:
            raise ValueError(f"not a partition:offset: {v!r}")
        out.add((int(m.group(1)), int(m.group(2))))
    return out


async def _main(args: argparse.Namespace) -> int:
    topic = args.prefix + ALARMS_DLQ
    since = parse_since(args.since) if getattr(args, "since", None) else None
    # TLS and SASL from the same variables as the services (KAFKA_SECURITY_PROTOCOL, KAFKA_TLS_*, KAFKA_SASL_*)
    security = KafkaSecurity.from_settings(BaseServiceSettings())
    letters = await read_dead_letters(args.bootstrap, topic, since=since, security=security)
    if args.command == "show":
        (want,) = _positions([args.position])
        hit = [d for d in letters if (d.partition, d.offset) == want]
        if not hit:
            print(f"no dead letter at {args.position} in {topic}", file=sys.stderr)
            return 1
        print(_show(hit[0]))
        return 0
    chosen = select(
        letters, service=args.service, stage=args.stage, kind=args.kind, life_safety=args.life_safety
    )
    if args.command == "list":
        for d in chosen:
            if args.json:
                print(json.dumps({"dlq_position": d.position, **json.loads(d.record.to_bytes())}))
            else:
                print(_line(d))
        print(f"{len(chosen)} dead letter(s) in {topic}", file=sys.stderr)
        return 0
    missing: list[str] = []
    if args.positions:
        wanted = _positions(args.positions)
        chosen = [d for d in chosen if (d.partition, d.offset) in wanted]
        found = {(d.partition, d.offset) for d in chosen}
        missing = [f"{p}:{o}: not found (or filtered out)" for p, o in sorted(wanted - found)]
    if args.dry_run:
        for d in chosen:
            print(f"would replay {_line(d)}")
        return 1 if missing else 0
    done, problems = await replay(args.bootstrap, chosen, security)
    for p in missing + problems:
        print(p, file=sys.stderr)
    print(f"{done} replayed, {len(missing) + len(problems)} not", file=sys.stderr)
    return 1 if missing or problems else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return asyncio.run(_main(args))
    except (KafkaError, TimeoutError, OSError, ValueError) as exc:
        print(f"alarmhub-dlq: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
