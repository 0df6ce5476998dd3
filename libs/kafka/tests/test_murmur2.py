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


@settings(max_examples=500, deadline=None)
@given(st.binary(min_size=1, max_size=64), st.integers(min_value=1, max_value=48))
def test_producer_key_memo_picks_aiokafkas_partition(key: bytes, n: int) -> None:
    """Both DurableProducer send paths take a key's partition from its memo: the one aiokafka would pick."""
    from alarmhub_kafka import DurableProducer

    parts = list(range(n))
    memo: tuple[list[int], dict[bytes | None, int]] = (parts, {})
    first = DurableProducer._keyed_partition(memo, key)
    assert first == DefaultPartitioner()(key, parts, parts)
    assert DurableProducer._keyed_partition(memo, key) == first and memo[1][key] == first
