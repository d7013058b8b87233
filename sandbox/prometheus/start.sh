#!/bin/sh
# Debian's prometheus, configured for the sandbox's ports, on loopback only.
set -eu
mkdir -p /prometheus
sed -e "s/@API_PORT@/$API_PORT/" -e "s/@PROMETHEUS_PORT@/$PROMETHEUS_PORT/" \
    -e "s/@ALERTMANAGER_PORT@/$ALERTMANAGER_PORT/" \
    /opt/aiagents/prometheus/prometheus.yml.in > /prometheus/prometheus.yml
exec prometheus --config.file=/prometheus/prometheus.yml --storage.tsdb.path=/prometheus/data \
    --web.listen-address="$SANDBOX_BIND:$PROMETHEUS_PORT" --web.enable-lifecycle \
    --storage.tsdb.retention.time=1d
