"""Our murmur2 picks the same partitions as aiokafka's partitioner (per-key order across both send paths)."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from alarmhub_kafka import murmur2
from hypothesis import given, settings
from hypothesis import strategies as st


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=80))
def test_same_hash_as_aiokafka(key: bytes) -> None:
    assert murmur2(key) == aiokafka_murmur2(key)


def test_same_partition_as_aiokafka_for_uuid_keys() -> None:
    import uuid

    parts = list(range(6))
    p = DefaultPartitioner()
    for i in range(2000):
        kb = str(uuid.uuid5(uuid.NAMESPACE_DNS, str(i))).encode()
        assert parts[(murmur2(kb) & 0x7FFFFFFF) % len(parts)] == p(kb, parts, parts)
