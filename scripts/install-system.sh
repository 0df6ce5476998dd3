#!/usr/bin/env bash
# Debian packages the test suite needs. Installs only what is missing; needs root (as CI is) or sudo.
set -euo pipefail
# package:probe pairs; the probe is a command, or a path that the package installs
needed=(
  prometheus:promtool
  sip-tester:sipp
  chromium:/usr/bin/chromium
  fonts-noto-cjk:/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc
  # live view: dispatch's media relay runs ffmpeg (RTSP -> HLS); the live-view test serves a synthetic
  # camera with GStreamer's RTSP server (python3-gi + its introspection data, x264enc from plugins-ugly)
  ffmpeg:ffmpeg
  python3-gi:/usr/lib/python3/dist-packages/gi/__init__.py
  gir1.2-gst-rtsp-server-1.0:/usr/lib/x86_64-linux-gnu/girepository-1.0/GstRtspServer-1.0.typelib
  gstreamer1.0-plugins-base:/usr/lib/x86_64-linux-gnu/gstreamer-1.0/libgstvideotestsrc.so
  gstreamer1.0-plugins-good:/usr/lib/x86_64-linux-gnu/gstreamer-1.0/libgstrtp.so
  gstreamer1.0-plugins-ugly:/usr/lib/x86_64-linux-gnu/gstreamer-1.0/libgstx264.so
  postgresql-15:/usr/lib/postgresql/15/bin/initdb
  pgbackrest:pgbackrest
)
missing=()
for pc in "${needed[@]}"; do
  pkg=${pc%%:*}; cmd=${pc#*:}
  if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -e "$cmd" ]; then missing+=("$pkg"); fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null; then echo "install-system: apt-get not found; need: ${missing[*]}" >&2; exit 1; fi
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "install-system: installing ${missing[*]}"
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"
