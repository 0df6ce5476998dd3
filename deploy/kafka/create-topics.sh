#!/usr/bin/env bash
# Create the contract's topics on the production cluster: replication 3, min.insync.replicas 2.
# Partition counts are the capacity plan's (docs/capacity.md); idempotent (--if-not-exists).
# tests/deploy checks that this list matches alarmhub_events.TOPICS.
set -euo pipefail
BOOTSTRAP=${KAFKA_BOOTSTRAP:?KAFKA_BOOTSTRAP is required}
PREFIX=${ALARMHUB_TOPIC_PREFIX:-}
# compose.tls.yaml: the brokers' mutual-TLS listener, reached with a client properties file
CLIENT=()
if [[ -n "${KAFKA_COMMAND_CONFIG:-}" ]]; then CLIENT=(--command-config "$KAFKA_COMMAND_CONFIG"); fi
REPLICATION=3
MIN_INSYNC=2
# topic:partitions:retention_ms
TOPICS=(
  "alarms.raw:24:604800000"
  "telemetry.gps:48:86400000"
  "devices.status:12:604800000"
  "alarms.triaged:24:604800000"
  "incidents.events:12:2592000000"
  "alarms.dlq:6:2592000000"
)
for spec in "${TOPICS[@]}"; do
  IFS=: read -r name partitions retention <<<"$spec"
  /opt/kafka/bin/kafka-topics.sh --bootstrap-server "$BOOTSTRAP" ${CLIENT[@]+"${CLIENT[@]}"} --create --if-not-exists \
    --topic "${PREFIX}${name}" --partitions "$partitions" --replication-factor "$REPLICATION" \
    --config "min.insync.replicas=${MIN_INSYNC}" --config "retention.ms=${retention}" \
    --config "unclean.leader.election.enable=false"
done
/opt/kafka/bin/kafka-topics.sh --bootstrap-server "$BOOTSTRAP" ${CLIENT[@]+"${CLIENT[@]}"} --describe --topic "${PREFIX}alarms.raw"
# compose.tls.yaml: the services' SCRAM-SHA-512 user, its password from a file (a properties file in the
# container's /tmp, never an argument)
if [[ -n "${KAFKA_SCRAM_USER:-}" ]]; then
  umask 077
  printf 'SCRAM-SHA-512=[password=%s]\n' "$(cat "${KAFKA_SCRAM_PASSWORD_FILE:?KAFKA_SCRAM_PASSWORD_FILE is required}")" >/tmp/scram.properties
  /opt/kafka/bin/kafka-configs.sh --bootstrap-server "$BOOTSTRAP" ${CLIENT[@]+"${CLIENT[@]}"} --alter \
    --entity-type users --entity-name "$KAFKA_SCRAM_USER" --add-config-file /tmp/scram.properties
  rm -f /tmp/scram.properties
fi
