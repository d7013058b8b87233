# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection options shared by every module that talks to PostgreSQL (community.postgresql's names)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  login_host:
    description:
      - Host running the database server.
      - Empty means the libpq default (the local Unix socket); use V(127.0.0.1) rather than V(localhost)
        when IPv6 resolution gets in the way.
    type: str
    default: ''
  login_port:
    description: Port of the database server, 1 to 65535.
    type: int
    default: 5432
  login_unix_socket:
    description: Directory of the Unix domain socket, for local connections.
    type: str
    default: ''
  login_user:
    description: Role the module logs in as.
    type: str
    default: postgres
  login_password:
    description: Password of O(login_user). Never logged, never part of a message or a result.
    type: str
    default: ''
  login_db:
    description: Database to connect to.
    type: str
    default: postgres
    aliases: [db]
  ssl_mode:
    description:
      - Whether or with what priority a TLS connection is negotiated, as libpq's C(sslmode).
      - See U(https://www.postgresql.org/docs/current/libpq-ssl.html).
    type: str
    default: prefer
    choices: [allow, disable, prefer, require, verify-ca, verify-full]
  ca_cert:
    description: File of CA certificate(s) the server's certificate must be signed by (libpq's C(sslrootcert)).
    type: str
    aliases: [ssl_rootcert]
  ssl_cert:
    description: Client certificate file (libpq's C(sslcert)).
    type: path
  ssl_key:
    description: Client certificate's private key file (libpq's C(sslkey)).
    type: path
  connect_timeout:
    description:
      - Seconds connecting may take in all, 1 to 300 - every host of a host list, TLS and authentication
        included. The module enforces it itself - libpq's own C(connect_timeout) restarts for each host and
        address, is at least 2 s, and waits forever at 0 or below.
      - Name resolution is the system resolver's, and comes before it.
      - A C(connect_timeout) in O(connect_params) takes precedence, held to the same range.
    type: int
    default: 5
  connect_params:
    description:
      - Further libpq connection parameters, as strings or numbers; they take precedence over the options above.
        A C(dsn) among them (a URI or a key=value string) is read as its parameters.
      - psycopg2's own arguments (C(connection_factory), C(cursor_factory), C(async)) are refused.
      - Credentials among them (C(password), C(sslpassword), a URI's user info, a C(password=) in a connection
        string) are masked in every result and message, the invocation shown at C(-vvv) included.
    type: dict
    default: {}
requirements:
  - psycopg2 >= 2.8
notes:
  - The option names are those of the community.postgresql collection, so one set of connection
    variables serves both.
"""
