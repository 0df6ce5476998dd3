"""Operator reset of a JT/T 808 terminal's registration: ``python -m alarmhub_ingest_gps.registration reset
<device id>`` (``DATABASE_URL``).

A registered terminal's authentication code is given out once; a terminal that registers again (a
reflashed tracker, a new SIM) is refused with result 3, counted in
``alarmhub_ingest_gps_reregistrations_refused_total`` and alerted. After checking the vehicle, an operator
resets it here (or with ``POST /api/v1/registry/vehicles/{id}/reset-registration``): the stored code is
cleared and the terminal's next registration is answered.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from .registry import VehicleRegistry

__all__ = ["main", "reset"]


async def reset(database_url: str, device_id: str) -> bool:
    registry = VehicleRegistry(database_url)
    try:
        return await registry.reset_auth(device_id)
    finally:
        await registry.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Reset a JT/T 808 terminal's registration")
    parser.add_argument("action", choices=("reset",))
    parser.add_argument("device_id")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/alarmhub"),
    )
    args = parser.parse_args(argv)
    if not asyncio.run(reset(args.database_url, args.device_id)):
        print(f"no vehicle {args.device_id!r} in the registry", file=sys.stderr)
        return 1
    print(f"registration of {args.device_id} reset: its next 0x0100 is answered with a code")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
