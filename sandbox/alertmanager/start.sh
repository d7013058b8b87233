#!/bin/sh
# Debian's prometheus-alertmanager, configured for the sandbox's ports, on
# loopback only, one instance (no cluster gossip).
set -eu
mkdir -p /alertmanager
sed -e "s/@EDA_WEBHOOK_PORT@/$EDA_WEBHOOK_PORT/" \
    /opt/aiagents/alertmanager/alertmanager.yml.in > /alertmanager/alertmanager.yml
exec prometheus-alertmanager --config.file=/alertmanager/alertmanager.yml --storage.path=/alertmanager/data \
    --web.listen-address="$SANDBOX_BIND:$ALERTMANAGER_PORT" --cluster.listen-address= \
    --web.external-url="http://127.0.0.1:$ALERTMANAGER_PORT"
