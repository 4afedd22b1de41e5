#!/bin/bash
# The compose broker's health check: the admin logs in (SASL/SCRAM) on the
# internal listener and asks for the API versions. The client config holding
# the password is written by the shell (no process shows it) with mode 0600.
set -euo pipefail
umask 077
config=/tmp/planning-healthcheck.properties
printf '%s\n' 'security.protocol=SASL_PLAINTEXT' 'sasl.mechanism=SCRAM-SHA-512' \
  "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"admin\" password=\"${PLANNING_KAFKA_ADMIN_PASSWORD:?}\";" \
  > "$config"
exec /opt/kafka/bin/kafka-broker-api-versions.sh --bootstrap-server localhost:9092 --command-config "$config" > /dev/null
