#!/usr/bin/env bash
# Debian packages only the benchmarks need: PostGIS for bench/routing.py's ST_Contains baseline, matching
# the major version of the PostgreSQL server on 127.0.0.1:5432 (skipped when there is none or it is not
# Debian's). Installs only what is missing; needs root (as CI is) or sudo.
set -euo pipefail
major=$(psql -h 127.0.0.1 -U postgres -tAc "SHOW server_version_num" 2>/dev/null | cut -c1-2 || true)
if [ -z "$major" ]; then echo "install-bench: no PostgreSQL on 127.0.0.1:5432; PostGIS baseline will be skipped"; exit 0; fi
pkg="postgresql-${major}-postgis-3"
if [ -d "/usr/share/postgresql/${major}/extension" ] && ls "/usr/share/postgresql/${major}/extension"/postgis.control >/dev/null 2>&1; then
  exit 0
fi
if [ ! -d "/usr/share/postgresql/${major}" ] || ! command -v apt-get >/dev/null; then
  echo "install-bench: PostgreSQL ${major} is not Debian's; install PostGIS for it by hand to get the baseline"; exit 0
fi
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "install-bench: installing ${pkg}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$pkg"
