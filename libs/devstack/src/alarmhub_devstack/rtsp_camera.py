"""A synthetic RTSP camera for the live-view tests: GStreamer's RTSP server (Debian's
gir1.2-gst-rtsp-server-1.0) serving a moving test pattern, H.264 or H.265, on loopback.

As a script it runs with the system Python (``/usr/bin/python3``: it has ``gi``), not the project's venv:

    /usr/bin/python3 rtsp_camera.py --port 8554 --path /cam1 [--codec h264|h265]

and prints ``rtsp_camera_ready <url>`` once it listens; SIGTERM/SIGINT stop it. ffmpeg can pull RTSP
but cannot serve it to pullers, so the tests need a real server. From the tests, :func:`rtsp_camera`
starts one on a free port and stops it on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

SYSTEM_PYTHON = "/usr/bin/python3"
ENCODERS = {
    "h264": "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=25 bitrate=300"
    " ! rtph264pay name=pay0 pt=96",
    "h265": "x265enc tune=zerolatency speed-preset=ultrafast key-int-max=25 bitrate=300"
    " ! rtph265pay name=pay0 pt=96",
}


def available() -> str | None:
    """Why the synthetic camera cannot run here (None: it can)."""
    if not Path(SYSTEM_PYTHON).exists():
        return f"no {SYSTEM_PYTHON}"
    if not Path("/usr/lib/x86_64-linux-gnu/girepository-1.0/GstRtspServer-1.0.typelib").exists():
        return "no gir1.2-gst-rtsp-server-1.0 (scripts/install-system.sh)"
    if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
        return "no ffmpeg (scripts/install-system.sh)"
    return None


@contextlib.asynccontextmanager
async def rtsp_camera(codec: str = "h264", path: str = "/cam1") -> AsyncIterator[str]:
    """Serve the test pattern on a free loopback port; yields its rtsp:// URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = await asyncio.create_subprocess_exec(
        SYSTEM_PYTHON,
        __file__,
        "--port",
        str(port),
        "--path",
        path,
        "--codec",
        codec,
        stdout=asyncio.subprocess.PIPE,
        env={k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))},
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode().split()
        assert line[:1] == ["rtsp_camera_ready"], f"the RTSP camera did not start: {line}"
        yield line[1]
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                proc.kill()
                await proc.wait()


def main() -> int:
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer

    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8554)
    ap.add_argument("--path", default="/cam1")
    ap.add_argument("--codec", choices=sorted(ENCODERS), default="h264")
    args = ap.parse_args()
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address(args.host)
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        "( videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=25/1"
        f" ! videoconvert ! {ENCODERS[args.codec]} )"
    )
    factory.set_shared(True)  # one pipeline for every client, as a camera has
    server.get_mount_points().add_factory(args.path, factory)
    if server.attach(None) == 0:
        print(f"rtsp_camera_failed cannot listen on {args.host}:{args.port}", file=sys.stderr, flush=True)
        return 1
    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    print(f"rtsp_camera_ready rtsp://{args.host}:{args.port}{args.path}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
