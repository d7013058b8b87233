-- The canonical row-level security of the tenant tables. Idempotent: run at
-- initialisation and by `sandbox heal` to undo every RLS fault. psql
-- variable: app_user.
\set ON_ERROR_STOP on
BEGIN;
-- Never queue forever behind a stuck transaction: fail and say so.
SET LOCAL lock_timeout = '15s';
ALTER ROLE :"app_user" NOSUPERUSER NOBYPASSRLS;
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['tenants', 'ticket_history', 'system_inventory', 'enhancement_history'] LOOP
        EXECUTE format('ALTER TABLE %I OWNER TO aiagents', t);
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('DROP POLICY IF EXISTS tenant_isolation ON %I', t);
        EXECUTE format($p$CREATE POLICY tenant_isolation ON %I
            USING (tenant_id = COALESCE(current_setting('app.current_tenant_id', true), ''))$p$, t);
    END LOOP;
END
$$;
-- Ownership changes move privileges: restore the app role's grants too.
GRANT SELECT ON tenants, ticket_history, system_inventory TO :"app_user";
GRANT SELECT, INSERT ON enhancement_history TO :"app_user";
COMMIT;
