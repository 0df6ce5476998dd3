"""A bare JT/T 808 reference gateway for ``bench/gps.py trackers``: what the protocol alone costs.

Per frame: the project's framer, unescape/check/header parse and 0x0200 decode; every location becomes a
small JSON record written to Kafka with acks=all, in batches (whatever arrived while the previous batch
was in flight), and each 0x8001 is written only once the broker confirmed its batch. Everything else
(0x0102 log-in, heartbeats) is answered at once. No registry, authentication check, session state,
alarms, metrics or logs — so ``bench/gps.py`` running the real gateway and this one under the same load
shows what the service's own work costs.

    .venv/bin/python bench/gps_bare.py --port 5808 --bootstrap 127.0.0.1:9092 --topic bench.telemetry.gps
                                       [--workers N]

``--workers N`` starts N copies on the port (``SO_REUSEPORT``), as ``ALARMHUB_GPS_WORKERS`` does for the
gateway. Prints ``ready`` once listening; stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
from typing import Any


class Bare:
    def __init__(self, producer: Any, topic: str) -> None:
        self.producer = producer
        self.topic = topic
        self.pending: list[tuple[asyncio.Transport, bytes, bytes, bytes]] = []
        self.wake = asyncio.Event()

    async def flush_forever(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            batch, self.pending = self.pending, []
            futs = [await self.producer.send(self.topic, value=v, key=k) for _, k, v, _ in batch]
            await asyncio.gather(*futs)
            for tr, _, _, reply in batch:
                if not tr.is_closing():
                    tr.write(reply)


class Conn(asyncio.Protocol):
    def __init__(self, bare: Bare) -> None:
        from alarmhub_ingest_gps.protocols import jt808

        self.jt808 = jt808
        self.bare = bare
        self.framer = jt808.Framer()
        self.transport: asyncio.Transport | None = None
        self.serial = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        jt808, tr = self.jt808, self.transport
        assert tr is not None
        for frame in self.framer.feed(data):
            try:
                msg = jt808.decode(frame)
            except ValueError:
                continue
            h = msg.header
            self.serial = (self.serial + 1) & 0xFFFF
            reply = jt808.reply(h, self.serial)
            if h.msg_id != jt808.T_LOCATION:
                tr.write(reply)
                continue
            try:
                pos = jt808.decode_location(msg.body)
            except ValueError:
                continue
            record = {
                "device_id": h.phone,
                "lat": pos.lat,
                "lon": pos.lon,
                "speed_kmh": pos.speed_kmh,
                "heading_deg": pos.heading_deg,
                "time": pos.time.isoformat() if pos.time else None,
                "alarm_bits": pos.alarm_bits,
                "status_bits": pos.status_bits,
                "raw": msg.raw.hex(),
            }
            self.bare.pending.append((tr, h.phone.encode(), json.dumps(record).encode(), reply))
            self.bare.wake.set()


async def serve(port: int, bootstrap: str, topic: str) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2)
    await producer.start()
    bare = Bare(producer, topic)
    flusher = asyncio.create_task(bare.flush_forever())
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Conn(bare), "0.0.0.0", port, reuse_port=True, backlog=4096)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    print("ready", flush=True)
    await stop.wait()
    server.close()
    flusher.cancel()
    await producer.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--bootstrap", default="127.0.0.1:9092")
    ap.add_argument("--topic", required=True)
    ap.add_argument("--workers", type=int, default=1)
    a = ap.parse_args()
    if a.workers > 1:  # a supervisor of N single copies, stopped together
        argv = [
            sys.executable,
            __file__,
            "--port",
            str(a.port),
            "--bootstrap",
            a.bootstrap,
            "--topic",
            a.topic,
        ]
        children = [subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) for _ in range(a.workers)]
        for c in children:
            assert c.stdout is not None
            c.stdout.readline()
        print("ready", flush=True)

        def stop(*_: object) -> None:
            for c in children:
                c.terminate()

        signal.signal(signal.SIGTERM, stop)
        for c in children:
            c.wait()
        return 0
    import uvloop

    uvloop.run(serve(a.port, a.bootstrap, a.topic))
    return 0


if __name__ == "__main__":
    sys.exit(main())
