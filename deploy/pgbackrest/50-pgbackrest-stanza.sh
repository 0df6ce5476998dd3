#!/bin/sh
# First start of the data directory (docker-entrypoint-initdb.d): create the stanza, so archive-push works
# from the first WAL segment on. Later starts keep it; `pgbackrest-alarmhub check` verifies the set-up.
set -eu
pgbackrest-alarmhub stanza-create
