"""``alarmhub-dlq`` as an operator runs it (the console script, a real broker): list, show, replay."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from alarmhub_events import ALARMS_RAW, AlarmEvent, AlarmKind, Source, utcnow
from alarmhub_kafka import DurableProducer, KafkaMetrics
from alarmhub_kafka.cli import parse_since
from prometheus_client import CollectorRegistry

BIN = Path(sys.executable).parent / "alarmhub-dlq"


async def _dlq(stack: Any, prefix: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KAFKA_BOOTSTRAP": stack.kafka_bootstrap, "ALARMHUB_TOPIC_PREFIX": prefix}
    return await asyncio.to_thread(
        subprocess.run, [str(BIN), *args], env=env, capture_output=True, text=True, timeout=60
    )


async def test_list_show_and_replay_a_dead_letter(stack: Any, topic_prefix: str, consume_topic: Any) -> None:
    producer = DurableProducer(
        stack.kafka_bootstrap,
        metrics=KafkaMetrics(CollectorRegistry()),
        client_id="test",
        topic_prefix=topic_prefix,
        service="dispatch",
    )
    await producer.start()
    sos = AlarmEvent(
        kind=AlarmKind.PANIC,
        source=Source(protocol="dc09-sia", device_id="L1#7001"),
        occurred_at=utcnow(),
        received_at=utcnow(),
    )
    try:
        await producer.dead_letter(
            stage="process",
            source_id=f"{topic_prefix}{ALARMS_RAW}/3/17",
            error="deterministic: CheckViolationError: new row violates check constraint",
            raw=sos.to_bytes(),
            source_topic=topic_prefix + ALARMS_RAW,
            source_partition=3,
            source_offset=17,
            kind="panic",
            source_key="L1#7001",
        )
        await producer.dead_letter(stage="decode", source_id="10.0.0.9:4000", error="bad CRC", raw=b"\nxx\r")
    finally:
        await producer.stop()

    listed = await _dlq(stack, topic_prefix, "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert len(lines) == 2 and "2 dead letter(s)" in listed.stderr
    sos_line = next(line for line in lines if "panic" in line)
    position = sos_line.split()[0]
    life = await _dlq(stack, topic_prefix, "list", "--life-safety", "--json", "--since", "10m")
    (doc,) = [json.loads(line) for line in life.stdout.splitlines()]
    assert doc["kind"] == "panic" and doc["dlq_position"] == position and doc["source_key"] == "L1#7001"

    shown = await _dlq(stack, topic_prefix, "show", position)
    assert shown.returncode == 0 and json.loads(shown.stdout)["raw_text"] == sos.to_bytes().decode()

    dry = await _dlq(stack, topic_prefix, "replay", "--dry-run", "--life-safety")
    assert dry.returncode == 0 and dry.stdout.count("would replay") == 1
    replayed = await _dlq(stack, topic_prefix, "replay", position)
    assert replayed.returncode == 0, replayed.stderr
    (back,) = await consume_topic(topic_prefix, ALARMS_RAW, 1)
    assert AlarmEvent.model_validate(back) == AlarmEvent.from_bytes(sos.to_bytes())

    frame = next(line for line in lines if "decode" in line).split()[0]
    refused = await _dlq(stack, topic_prefix, "replay", frame, "9:9")
    assert (
        refused.returncode == 1 and "no source topic" in refused.stderr and "9:9: not found" in refused.stderr
    )


def test_since_takes_durations_and_instants() -> None:
    now = utcnow()
    assert (now - parse_since("2h", now)).total_seconds() == 7200
    assert parse_since("2026-12-01T08:00:00").isoformat() == "2026-12-01T08:00:00+00:00"
