"""The live-view relay against a real RTSP server (GStreamer's, serving a synthetic camera on loopback)
and the real ffmpeg: one relay per camera shared by its viewers, stopped when the last one leaves or
its token lapses, bounded in number, and the three plain refusals (unreachable, limit, codec)."""

from __future__ import annotations

import asyncio
import os
import socket

import pytest
from alarmhub_devstack.rtsp_camera import available, rtsp_camera
from alarmhub_dispatch.media_relay import CameraUnreachable, CodecUnplayable, MediaRelay, ViewerLimit

pytestmark = pytest.mark.skipif(available() is not None, reason=str(available()))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def _gone(pid: int) -> bool:
    """The relay's ffmpeg has exited and been reaped (no process, not even a zombie, is left)."""
    for _ in range(50):
        if not _alive(pid):
            return True
        await asyncio.sleep(0.1)
    return False


async def test_viewers_share_one_relay_which_stops_with_the_last() -> None:
    relay = MediaRelay()
    try:
        async with rtsp_camera() as url:
            tok1, stream = await relay.open("cam-1", url, "officer-a")
            tok2, again = await relay.open("cam-1", url, "officer-b")
            assert again is stream and tok1 != tok2 and stream.codec == "h264" and not stream.transcoded
            playlist = relay.file(tok1, "index.m3u8")
            assert playlist is not None and "#EXTM3U" in playlist.read_text()
            seg = next(line for line in playlist.read_text().splitlines() if line.endswith(".ts"))
            assert relay.file(tok2, seg) is not None
            assert relay.file(tok1, "../index.m3u8") is None and relay.file("nope", "index.m3u8") is None
            pid, workdir = stream.pid, stream.dir
            assert await relay.close(tok1)
            assert stream.proc.returncode is None  # officer-b still watches
            assert await relay.close(tok2)
            assert await _gone(pid) and not workdir.exists() and relay.streams() == {}
    finally:
        await relay.stop_all()


async def test_a_lapsed_token_stops_the_relay() -> None:
    now = [1000.0]
    relay = MediaRelay(token_ttl_s=30, clock=lambda: now[0])
    try:
        async with rtsp_camera() as url:
            tok, stream = await relay.open("cam-2", url, "officer-a")
            now[0] += 20
            assert relay.file(tok, "index.m3u8") is not None  # the player's refresh keeps it alive
            now[0] += 29
            assert await relay.reap() == 0
            now[0] += 31  # the tab was closed without a word
            assert relay.file(tok, "index.m3u8") is None
            assert await relay.reap() == 1 and await _gone(stream.pid)
    finally:
        await relay.stop_all()


async def test_refusals_unreachable_limit_and_codec() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"rtsp://127.0.0.1:{s.getsockname()[1]}/cam"  # nothing listens there
    relay = MediaRelay(max_streams=1, max_viewers=1, probe_timeout_s=3)
    try:
        with pytest.raises(CameraUnreachable):
            await relay.open("cam-dead", dead, "officer-a")
        async with rtsp_camera() as url:
            await relay.open("cam-3", url, "officer-a")
            with pytest.raises(ViewerLimit):
                await relay.open("cam-3", url, "officer-b")  # viewers per relay
            with pytest.raises(ViewerLimit):
                await relay.open("cam-4", url, "officer-b")  # relays at once
        async with rtsp_camera(codec="h265") as url:
            with pytest.raises(CodecUnplayable, match="hevc"):
                await MediaRelay().open("cam-5", url, "officer-a")
    finally:
        await relay.stop_all()


async def test_h265_is_transcoded_when_allowed() -> None:
    relay = MediaRelay(transcode=True)
    try:
        async with rtsp_camera(codec="h265") as url:
            tok, stream = await relay.open("cam-6", url, "officer-a")
            assert stream.codec == "hevc" and stream.transcoded
            assert relay.file(tok, "index.m3u8") is not None
    finally:
        await relay.stop_all()
