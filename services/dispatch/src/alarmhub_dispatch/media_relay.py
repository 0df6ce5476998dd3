"""Live view: a camera's RTSP stream relayed to HLS by ``ffmpeg``, started on demand, bounded in number.

The relay runs inside dispatch (its network zone reaches the cameras; the browsers reach only
dispatch). Opening a view:

1. ``ffprobe`` asks the camera for its stream (``camera_unreachable`` if it does not answer in
   ``probe_timeout_s``) and reads the video codec. Browsers' Media Source Extensions play H.264 (Debian's
   Chromium: H.264, VP8/VP9, AV1; not H.265): H.264 is copied as it comes; any other codec is
   transcoded to H.264 when ``transcode`` is on, else refused (``codec_unplayable``).
2. One ``ffmpeg`` per camera writes a short rolling HLS playlist (``index.m3u8`` + 1 s MPEG-TS
   segments, the oldest deleted) into its own temporary directory; every viewer of the camera shares it.
3. The viewer gets a stream token (random, not the user's bearer token): the playlist's URL is
   ``/media/<token>/index.m3u8``. The token names one stream and lapses ``token_ttl_s`` after its last
   use (the player refreshes the playlist every second while it plays) and at most ``max_view_s`` after
   it was issued.

A relay is stopped when its last viewer closes the view or its last token lapses (the reaper runs every
second). At most ``max_streams`` relays run at once and ``max_viewers`` tokens per relay: beyond that
the caller is told ``viewer_limit``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alarmhub_runtime import get_logger

__all__ = [
    "CameraUnreachable",
    "CodecUnplayable",
    "LiveError",
    "LiveStream",
    "MediaRelay",
    "ViewerLimit",
]

log = get_logger("alarmhub.dispatch.media_relay")

#: the files a relay writes: the playlist and its numbered segments (nothing else is served)
MEDIA_FILE = re.compile(r"^(index\.m3u8|seg\d{1,9}\.ts)$")
PLAYABLE = frozenset({"h264"})  # what every MSE browser plays; Debian's Chromium also plays VP8/VP9/AV1


class LiveError(Exception):
    """Live view cannot be given; ``code`` is what the console explains to the user."""

    code = "live_error"


class CameraUnreachable(LiveError):
    code = "camera_unreachable"


class ViewerLimit(LiveError):
    code = "viewer_limit"


class CodecUnplayable(LiveError):
    code = "codec_unplayable"


@dataclass
class _Token:
    stream: LiveStream
    viewer: str
    issued: float
    used: float


@dataclass(eq=False)
class LiveStream:
    camera_id: str
    codec: str
    transcoded: bool
    dir: Path
    proc: asyncio.subprocess.Process
    started: float
    tokens: set[str] = field(default_factory=set)
    _stderr: list[str] = field(default_factory=list)
    _drain: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def last_error(self) -> str:
        return self._stderr[-1] if self._stderr else ""


class MediaRelay:
    def __init__(
        self,
        *,
        ffmpeg: str = "ffmpeg",
        ffprobe: str = "ffprobe",
        max_streams: int = 8,
        max_viewers: int = 10,
        token_ttl_s: float = 30.0,
        max_view_s: float = 3600.0,
        probe_timeout_s: float = 8.0,
        start_timeout_s: float = 15.0,
        transcode: bool = False,
        root: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[int], None] | None = None,
    ) -> None:
        self.ffmpeg, self.ffprobe = ffmpeg, ffprobe
        self.max_streams, self.max_viewers = max_streams, max_viewers
        self.token_ttl_s, self.max_view_s = token_ttl_s, max_view_s
        self.probe_timeout_s, self.start_timeout_s = probe_timeout_s, start_timeout_s
        self.transcode = transcode
        self._root = root
        self._clock = clock
        self._on_change = on_change  # the running-relays gauge
        self._streams: dict[str, LiveStream] = {}
        self._starting: dict[str, asyncio.Future[LiveStream]] = {}
        self._tokens: dict[str, _Token] = {}
        self._reaper: asyncio.Task[None] | None = None

    @property
    def available(self) -> bool:
        return shutil.which(self.ffmpeg) is not None and shutil.which(self.ffprobe) is not None

    def streams(self) -> dict[str, LiveStream]:
        return dict(self._streams)

    # -- viewers ---------------------------------------------------------------------------------
    async def open(self, camera_id: str, url: str, viewer: str) -> tuple[str, LiveStream]:
        """A stream token for ``viewer`` on the camera's relay (started if none runs)."""
        self._ensure_reaper()
        stream = self._streams.get(camera_id)
        if stream is None:
            pending = self._starting.get(camera_id)
            if pending is not None:
                stream = await asyncio.shield(pending)
            else:
                if len(self._streams) + len(self._starting) >= self.max_streams:
                    raise ViewerLimit(f"{self.max_streams} live streams already run")
                fut: asyncio.Future[LiveStream] = asyncio.get_running_loop().create_future()
                self._starting[camera_id] = fut
                try:
                    stream = await self._start(camera_id, url)
                except BaseException as exc:
                    fut.set_exception(exc)
                    fut.exception()  # retrieved: no "never retrieved" warning when nobody else waits
                    raise
                finally:
                    self._starting.pop(camera_id, None)
                fut.set_result(stream)
                self._streams[camera_id] = stream
                self._changed()
        if len(stream.tokens) >= self.max_viewers:
            raise ViewerLimit(f"{self.max_viewers} viewers already watch this camera")
        token = secrets.token_urlsafe(24)
        now = self._clock()
        self._tokens[token] = _Token(stream, viewer, now, now)
        stream.tokens.add(token)
        log.info("live_view_opened", camera_id=camera_id, viewer=viewer, viewers=len(stream.tokens))
        return token, stream

    def file(self, token: str, name: str) -> Path | None:
        """The relay file a player asks for with its token (refreshing the token), or None."""
        tok = self._tokens.get(token)
        if tok is None or not MEDIA_FILE.match(name) or self._lapsed(tok, self._clock()):
            return None
        tok.used = self._clock()
        path = tok.stream.dir / name
        return path if path.is_file() else None

    async def close(self, token: str) -> bool:
        """The viewer closed the view: its token ends; the relay stops if it was the last."""
        tok = self._tokens.pop(token, None)
        if tok is None:
            return False
        tok.stream.tokens.discard(token)
        log.info("live_view_closed", camera_id=tok.stream.camera_id, viewer=tok.viewer)
        if not tok.stream.tokens:
            await self._stop(tok.stream, "no_viewers")
        return True

    def _lapsed(self, tok: _Token, now: float) -> bool:
        return now - tok.used > self.token_ttl_s or now - tok.issued > self.max_view_s

    async def reap(self) -> int:
        """Drop lapsed tokens and stop relays nobody watches or whose ffmpeg died; returns relays stopped."""
        now = self._clock()
        for token, tok in list(self._tokens.items()):
            if self._lapsed(tok, now):
                self._tokens.pop(token, None)
                tok.stream.tokens.discard(token)
        stopped = 0
        for stream in list(self._streams.values()):
            if not stream.tokens:
                await self._stop(stream, "no_viewers")
                stopped += 1
            elif stream.proc.returncode is not None:
                await self._stop(stream, "relay_exited")
                stopped += 1
        return stopped

    def _ensure_reaper(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.create_task(self._reap_forever(), name="dispatch:media-reaper")

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            try:
                await self.reap()
            except Exception as exc:  # keep reaping; a relay that failed to stop is retried next second
                log.warning("live_reap_failed", error=repr(exc))

    async def stop_all(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        for stream in list(self._streams.values()):
            await self._stop(stream, "shutdown")
        self._tokens.clear()

    # -- processes -------------------------------------------------------------------------------
    async def probe(self, url: str) -> dict[str, Any]:
        """The camera's first video stream (codec_name, width, height), or CameraUnreachable."""
        args = [self.ffprobe, "-v", "error"]
        if url.startswith("rtsp"):
            args += ["-rtsp_transport", "tcp", "-timeout", str(int(self.probe_timeout_s * 1e6))]
        args += [
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=codec_name,width,height",
            "-of",
            "json",
            url,
        ]
        proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), self.probe_timeout_s + 2)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise CameraUnreachable("the camera did not answer") from None
        streams = json.loads(out or b"{}").get("streams") or []
        if proc.returncode != 0 or not streams:
            msg = err.decode(errors="replace").strip().splitlines()
            raise CameraUnreachable(msg[-1] if msg else "the camera sent no video stream")
        return dict(streams[0])

    async def snapshot(self, url: str, timeout_s: float = 10.0) -> bytes:
        """One JPEG frame of the camera's stream (decoded here, so any codec ffmpeg knows: H.265 too)."""
        args = [self.ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error"]
        if url.startswith("rtsp"):
            args += ["-rtsp_transport", "tcp", "-timeout", str(int(self.probe_timeout_s * 1e6))]
        args += ["-i", url, "-an", "-frames:v", "1", "-f", "image2", "-c:v", "mjpeg", "-q:v", "4", "pipe:1"]
        proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise CameraUnreachable("the camera sent no picture in time") from None
        if proc.returncode != 0 or not out:
            msg = err.decode(errors="replace").strip().splitlines()
            raise CameraUnreachable(msg[-1] if msg else "the camera sent no picture")
        return out

    def _args(self, url: str, codec: str, out: Path) -> tuple[list[str], bool]:
        args = [self.ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "warning", "-fflags", "+genpts"]
        if url.startswith("rtsp"):
            args += ["-rtsp_transport", "tcp", "-timeout", str(int(self.probe_timeout_s * 1e6))]
        args += ["-i", url, "-an", "-sn", "-dn"]
        transcoded = codec not in PLAYABLE
        if transcoded:
            args += ["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "25"]
        else:
            args += ["-c:v", "copy"]
        args += [
            "-f",
            "hls",
            "-hls_time",
            "1",
            "-hls_list_size",
            "6",
            "-hls_flags",
            "delete_segments+omit_endlist+independent_segments",
            "-hls_segment_filename",
            str(out / "seg%d.ts"),
            str(out / "index.m3u8"),
        ]
        return args, transcoded

    async def _start(self, camera_id: str, url: str) -> LiveStream:
        info = await self.probe(url)
        codec = str(info.get("codec_name") or "unknown")
        if codec not in PLAYABLE and not self.transcode:
            raise CodecUnplayable(f"the camera sends {codec}; browsers play H.264 (transcoding is off)")
        out = Path(tempfile.mkdtemp(prefix="alarmhub-live-", dir=self._root))
        args, transcoded = self._args(url, codec, out)
        proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        stream = LiveStream(camera_id, codec, transcoded, out, proc, self._clock())
        stream._drain = asyncio.create_task(self._drain(stream), name=f"dispatch:ffmpeg-{proc.pid}")
        deadline = time.monotonic() + self.start_timeout_s
        playlist = out / "index.m3u8"
        while not playlist.is_file():  # the first segment is written: the player can start
            if proc.returncode is not None or time.monotonic() > deadline:
                await self._stop(stream, "start_failed")
                raise CameraUnreachable(stream.last_error() or "the camera's stream did not start")
            await asyncio.sleep(0.1)
        log.info("live_relay_started", camera_id=camera_id, pid=proc.pid, codec=codec, transcoded=transcoded)
        return stream

    @staticmethod
    async def _drain(stream: LiveStream) -> None:
        assert stream.proc.stderr is not None
        async for line in stream.proc.stderr:
            stream._stderr.append(line.decode(errors="replace").strip())
            del stream._stderr[:-20]  # the last lines explain a failure

    async def _stop(self, stream: LiveStream, reason: str) -> None:
        if self._streams.get(stream.camera_id) is stream:
            del self._streams[stream.camera_id]
            self._changed()
        for token in list(stream.tokens):
            self._tokens.pop(token, None)
        stream.tokens.clear()
        if stream.proc.returncode is None:
            stream.proc.terminate()  # ffmpeg finishes the segment in hand on SIGTERM
            try:
                await asyncio.wait_for(stream.proc.wait(), 3)
            except TimeoutError:
                stream.proc.kill()
                await stream.proc.wait()
        if stream._drain is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(stream._drain, 1)
        shutil.rmtree(stream.dir, ignore_errors=True)
        log.info("live_relay_stopped", camera_id=stream.camera_id, pid=stream.pid, reason=reason)

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(len(self._streams))
