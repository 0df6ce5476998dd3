"""Per-camera intake tokens: ``python -m alarmhub_ingest_camera.intake_tokens issue|revoke <camera id>``.

``issue`` makes a fresh token for a registered camera, stores only its SHA-256 and prints the token once
(for the camera's HTTP notification URL, ``…/events/isapi?token=…``, or an ``Authorization: Bearer``
header); issuing again replaces the old one. ``revoke`` removes it. Reads ``DATABASE_URL``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys

from .registry import CameraRegistry

__all__ = ["main", "new_intake_token", "run"]


def new_intake_token() -> str:
    return "cam_" + secrets.token_urlsafe(32)


async def run(database_url: str, action: str, camera_id: str) -> int:
    registry = CameraRegistry(database_url)
    try:
        token = new_intake_token() if action == "issue" else None
        if not await registry.set_intake_token(camera_id, token):
            print(f"no camera {camera_id!r} in the registry", file=sys.stderr)
            return 1
        print(token if token is not None else f"intake token of {camera_id} revoked")
        return 0
    finally:
        await registry.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("action", choices=("issue", "revoke"))
    parser.add_argument("camera_id")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/alarmhub"),
    )
    args = parser.parse_args(argv)
    return asyncio.run(run(args.database_url, args.action, args.camera_id))


if __name__ == "__main__":
    raise SystemExit(main())
