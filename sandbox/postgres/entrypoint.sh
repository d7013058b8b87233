#!/bin/sh
# PostgreSQL of the sandbox: initialise an empty data directory (schema, RLS,
# seed), then run the server on loopback. Runs as root only to prepare the
# data directory, the server itself runs as `postgres`.
set -eu
: "${PGDATA:=/var/lib/postgresql/data}"
secrets=/run/secrets/aiagents/postgres
mkdir -p "$PGDATA" /var/run/postgresql
chown -R postgres:postgres "$PGDATA" /var/run/postgresql
chmod 700 "$PGDATA"
as_pg() { runuser -u postgres -- "$@"; }
fingerprint="$(cat "$secrets/admin_password" "$secrets/app_password" | sha256sum | cut -d' ' -f1)"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    echo "initialising $POSTGRES_DB"
    install -o postgres -m 600 "$secrets/admin_password" /tmp/pwfile
    as_pg initdb -D "$PGDATA" -U "$POSTGRES_ADMIN_USER" --pwfile=/tmp/pwfile --data-checksums \
        --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
    rm -f /tmp/pwfile
    # Only loopback TCP (password) and the socket inside the container.
    printf 'local all all trust\nhost all all %s scram-sha-256\n' "${POSTGRES_HBA_CIDR:-127.0.0.1/32}" \
        > "$PGDATA/pg_hba.conf"
    as_pg pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p $POSTGRES_PORT" -w start >/dev/null
    as_pg createdb -p "$POSTGRES_PORT" -U "$POSTGRES_ADMIN_USER" "$POSTGRES_DB"
    psql_init() {
        as_pg psql -q -p "$POSTGRES_PORT" -U "$POSTGRES_ADMIN_USER" -d "$POSTGRES_DB" -v ON_ERROR_STOP=1 \
            -v app_user="$POSTGRES_APP_USER" -v app_password="$(cat "$secrets/app_password")" \
            -v sdp_url="${SDP_BASE_URL:-http://127.0.0.1:$SDP_PORT}" "$@"
    }
    psql_init -f /opt/aiagents/postgres/schema.sql
    psql_init -f /opt/aiagents/postgres/rls.sql
    psql_init -f /opt/aiagents/postgres/seed.sql
    as_pg pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    printf '%s\n' "$fingerprint" > "$PGDATA/.aiagents-secrets"
    echo "initialised"
fi

# Data checksums, so a torn or corrupted page is detected when read (the
# database runbook's corruption check), also on a data directory initialised
# without them: a clean socket-only start and stop first, as pg_checksums needs.
if pg_controldata "$PGDATA" | grep -q '^Data page checksum version: *0$'; then
    as_pg pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p $POSTGRES_PORT" -w start >/dev/null
    as_pg pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    as_pg pg_checksums --enable -D "$PGDATA" >/dev/null
    echo "data checksums enabled"
fi

# The passwords follow the secret files, also for a data directory kept from
# an earlier checkout whose secrets differed (the volume outlives `sandbox`'s
# secrets/ directory). A socket-only start, so nothing can connect meanwhile.
if [ "$(cat "$PGDATA/.aiagents-secrets" 2>/dev/null)" != "$fingerprint" ]; then
    as_pg pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p $POSTGRES_PORT" -w start >/dev/null
    as_pg psql -q -p "$POSTGRES_PORT" -U "$POSTGRES_ADMIN_USER" -d postgres -v ON_ERROR_STOP=1 \
        -v admin_user="$POSTGRES_ADMIN_USER" -v admin_password="$(cat "$secrets/admin_password")" \
        -v app_user="$POSTGRES_APP_USER" -v app_password="$(cat "$secrets/app_password")" <<'SQL'
ALTER ROLE :"admin_user" PASSWORD :'admin_password';
ALTER ROLE :"app_user" PASSWORD :'app_password';
SQL
    as_pg pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    printf '%s\n' "$fingerprint" > "$PGDATA/.aiagents-secrets"
    echo "role passwords set from the secret files"
fi

exec runuser -u postgres -- postgres -D "$PGDATA" \
    -c listen_addresses="$SANDBOX_BIND" -c port="$POSTGRES_PORT" \
    -c max_connections="$POSTGRES_MAX_CONNECTIONS" \
    -c unix_socket_directories=/var/run/postgresql \
    -c log_line_prefix='%m [%p] %u@%d ' -c log_connections=off
