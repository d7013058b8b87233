-- Schema of the AI Agents Platform database (run once, as the admin role, by
-- entrypoint.sh on an empty data directory). psql variables: app_user,
-- app_password, sdp_url.
\set ON_ERROR_STOP on

-- The workers' role: not owner, not superuser, not BYPASSRLS, so row-level
-- security applies to everything it reads and writes.
CREATE ROLE :"app_user" LOGIN PASSWORD :'app_password'
    NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;

CREATE TABLE tenants (
    tenant_id              text PRIMARY KEY CHECK (tenant_id ~ '^[a-z0-9][a-z0-9-]{0,49}$'),
    name                   text NOT NULL,
    sdp_url                text,
    -- name of the credentials secret (`tenant-<id>-sdp`: keys api_key, webhook_secret)
    sdp_credentials_secret text,
    -- where the webhook secret is: "<secret>/<key>"; NULL = <sdp_credentials_secret>/webhook_secret
    webhook_secret_ref     text,
    status                 text NOT NULL DEFAULT 'pending'
                           CHECK (status IN ('pending', 'configured', 'active', 'suspended')),
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE ticket_history (
    id         bigserial PRIMARY KEY,
    tenant_id  text NOT NULL REFERENCES tenants ON DELETE CASCADE,
    ticket_id  text NOT NULL,
    subject    text NOT NULL,
    resolution text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ticket_history_tenant ON ticket_history (tenant_id, created_at DESC);

CREATE TABLE system_inventory (
    id        bigserial PRIMARY KEY,
    tenant_id text NOT NULL REFERENCES tenants ON DELETE CASCADE,
    hostname  text NOT NULL,
    os        text NOT NULL,
    role      text NOT NULL,
    last_seen timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE enhancement_history (
    id          bigserial PRIMARY KEY,
    tenant_id   text NOT NULL REFERENCES tenants ON DELETE CASCADE,
    ticket_id   text NOT NULL,
    status      text NOT NULL CHECK (status IN ('success', 'failure')),
    summary     text,
    error       text,
    duration_ms integer NOT NULL,
    worker      text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX enhancement_history_tenant ON enhancement_history (tenant_id, created_at DESC);

-- Validates the tenant, then sets the context for the current transaction
-- only (SET LOCAL semantics), so a pooled connection never carries a tenant
-- into the next job. SECURITY DEFINER: the caller cannot see `tenants` rows
-- before it has a context.
CREATE FUNCTION set_tenant_context(p_tenant_id text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF p_tenant_id IS NULL OR NOT EXISTS (
        SELECT 1 FROM tenants WHERE tenant_id = p_tenant_id AND status <> 'suspended'
    ) THEN
        RAISE EXCEPTION 'unknown or suspended tenant: %', p_tenant_id USING ERRCODE = 'P0002';
    END IF;
    PERFORM set_config('app.current_tenant_id', p_tenant_id, true);
END
$$;
REVOKE ALL ON FUNCTION set_tenant_context(text) FROM PUBLIC;

GRANT USAGE ON SCHEMA public TO :"app_user";
GRANT EXECUTE ON FUNCTION set_tenant_context(text) TO :"app_user";
GRANT SELECT ON tenants, ticket_history, system_inventory TO :"app_user";
GRANT SELECT, INSERT ON enhancement_history TO :"app_user";
GRANT USAGE ON SEQUENCE enhancement_history_id_seq TO :"app_user";
