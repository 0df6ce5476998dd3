#!/bin/sh
# PostgreSQL over TLS only (compose.tls.yaml; docs/deployment.md, "Transport security"). Run by the postgres
# image's entrypoint on the first start of an empty volume, or once by hand on an existing one:
#   docker compose -f compose.yaml -f compose.tls.yaml exec postgres sh /docker-entrypoint-initdb.d/50-tls.sh
# The server shows /run/secrets/postgres_tls_cert; connections over the network are accepted only inside
# TLS (hostssl) with a password (scram-sha-256), so a plain connection finds no pg_hba line. The local
# socket (in the container: the entrypoint, pgBackRest, health checks) is unchanged.
# tests/transport/test_postgres_tls.py runs a server configured the same way (ssl on, hostssl only).
set -eu
cat >"$PGDATA/pg_hba.conf" <<'HBA'
# TYPE  DATABASE  USER  ADDRESS    METHOD
local   all       all              trust
hostssl all       all   0.0.0.0/0  scram-sha-256
hostssl all       all   ::/0       scram-sha-256
HBA
psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres <<'SQL'
ALTER SYSTEM SET ssl = on;
ALTER SYSTEM SET ssl_cert_file = '/run/secrets/postgres_tls_cert';
ALTER SYSTEM SET ssl_key_file = '/run/secrets/postgres_tls_key';
ALTER SYSTEM SET ssl_ca_file = '/run/secrets/alarmhub_ca';
ALTER SYSTEM SET ssl_min_protocol_version = 'TLSv1.2';
SELECT pg_reload_conf();
SQL
