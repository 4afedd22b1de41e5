#!/bin/bash
# Formats the compose broker's storage once, with the SCRAM users of the
# service principals (admin, worker, collector), before the broker first
# starts: SCRAM users can be created over the network only by a user that
# can already log in. Run by the one-shot `kafka-format` service.
#
# The passwords come from the environment and reach the storage tool through
# a java @argfile (mode 0600, removed at exit), never through argv, where
# `ps` on the host would show them.
set -euo pipefail
umask 077
: "${CLUSTER_ID:?}" "${KAFKA_NODE_ID:?}" "${KAFKA_LOG_DIRS:?}"
: "${PLANNING_KAFKA_ADMIN_PASSWORD:?}" "${PLANNING_KAFKA_WORKER_PASSWORD:?}" "${PLANNING_KAFKA_COLLECTOR_PASSWORD:?}"

if [ -f "$KAFKA_LOG_DIRS/meta.properties" ]; then
  echo "kafka-format: $KAFKA_LOG_DIRS is formatted already; nothing to do"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/format.properties" <<PROPERTIES
process.roles=broker,controller
node.id=$KAFKA_NODE_ID
controller.quorum.voters=$KAFKA_NODE_ID@kafka:9093
controller.listener.names=CONTROLLER
listeners=CONTROLLER://:9093
listener.security.protocol.map=CONTROLLER:SASL_PLAINTEXT
log.dirs=$KAFKA_LOG_DIRS
PROPERTIES
{
  printf '%s\n' -cp '"/opt/kafka/libs/*"' kafka.tools.StorageTool format \
    --config "$work/format.properties" --cluster-id "$CLUSTER_ID"
  for user in admin worker collector; do
    variable="PLANNING_KAFKA_${user^^}_PASSWORD"
    printf -- '--add-scram\n"SCRAM-SHA-512=[name=%s,password=%s]"\n' "$user" "${!variable}"
  done
} > "$work/format.args"
java "@$work/format.args"
