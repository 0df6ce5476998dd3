"""``alarmhub-ingest-contactid`` / ``python -m alarmhub_ingest_contactid``: settings, then the shared
entry point."""

from __future__ import annotations

from alarmhub_runtime import serve

from .app import ContactIdApp
from .config import ContactIdSettings


def main() -> None:
    settings = ContactIdSettings()
    # ALARMHUB_DC09_WORKERS > 1: this process supervises that many copies of itself on the same port.
    # uvloop (settings.uvloop) roughly halves asyncio's per-read and per-write overhead, which with
    # stop-and-wait transmitters is most of the receiver's CPU besides decoding (ALARMHUB_UVLOOP=0 falls back)
    serve(
        "ingest-contactid",
        settings,
        lambda registry, health: ContactIdApp(settings, registry),
        workers=settings.workers if settings.dc09_port else 1,
    )


if __name__ == "__main__":
    main()
