-- Two tenants with history, so isolation can be seen. psql variable: sdp_url.
\set ON_ERROR_STOP on
INSERT INTO tenants (tenant_id, name, sdp_url, sdp_credentials_secret, webhook_secret_ref, status) VALUES
    ('acme-corp', 'Acme Corporation', :'sdp_url', 'tenant-acme-corp-sdp', 'tenant-acme-corp-sdp/webhook_secret', 'active'),
    ('globex', 'Globex Inc.', :'sdp_url', 'tenant-globex-sdp', 'tenant-globex-sdp/webhook_secret', 'active');

INSERT INTO ticket_history (tenant_id, ticket_id, subject, resolution, created_at) VALUES
    ('acme-corp', 'TICKET-1001', 'VPN drops every hour', 'Raised IKE lifetime on the firewall', now() - interval '20 days'),
    ('acme-corp', 'TICKET-1002', 'Outlook cannot reach Exchange', 'Renewed autodiscover certificate', now() - interval '14 days'),
    ('acme-corp', 'TICKET-1003', 'Printer 3rd floor offline', 'Replaced network cable', now() - interval '9 days'),
    ('acme-corp', 'TICKET-1004', 'Disk full on fileserver01', 'Archived old project shares', now() - interval '4 days'),
    ('acme-corp', 'TICKET-1005', 'New starter laptop', 'Imaged and enrolled', now() - interval '1 day'),
    ('globex', 'TICKET-2001', 'ERP login slow', 'Rebuilt database indexes', now() - interval '12 days'),
    ('globex', 'TICKET-2002', 'Phishing mail reported', 'Blocked sender domain', now() - interval '6 days'),
    ('globex', 'TICKET-2003', 'Wi-Fi guest portal down', 'Restarted controller', now() - interval '2 days');

INSERT INTO system_inventory (tenant_id, hostname, os, role) VALUES
    ('acme-corp', 'fileserver01', 'Windows Server 2022', 'file server'),
    ('acme-corp', 'fw-edge-01', 'FortiOS 7.4', 'firewall'),
    ('acme-corp', 'exch01', 'Windows Server 2019', 'mail'),
    ('globex', 'erp-db-01', 'RHEL 9', 'database'),
    ('globex', 'wlc-01', 'AireOS 8.10', 'wireless controller');
