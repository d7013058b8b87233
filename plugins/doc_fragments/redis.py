# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection options shared by every module that talks to Redis."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  url:
    description:
      - Redis URL, C(redis://[[user]:password@]host[:port][/db]), for example V(redis://127.0.0.1:6379/0) or
        V(rediss://:secret@redis.example:6380/0); V(rediss) means TLS. A lone C(secret@) is the password.
      - Everything up to the last C(@) is the user and password, so a password may contain C(/), C(#) or C(@)
        as it is (percent-encoding is decoded too).
      - Refused with a message, before any connection, when the scheme is not V(redis) or V(rediss), the host
        is missing, the port is not within 1-65535, the database is not a number (V(redis://host/abc) is not
        database 0), or a query parameter other than C(db) is given.
      - Mutually exclusive with O(host), O(port), O(db), O(username), O(password) and O(tls).
      - May carry a password, so it is never logged nor shown in any message.
    type: str
  host:
    description: Redis host when O(url) is not given. Defaults to V(127.0.0.1).
    type: str
  port:
    description: Redis port when O(url) is not given, 1-65535. Defaults to V(6379).
    type: int
  db:
    description: Database number when O(url) is not given, at least 0. Defaults to V(0).
    type: int
  username:
    description: ACL user name, when the server uses ACLs.
    type: str
  password:
    description: Password (C(requirepass) or the ACL user's). Never logged.
    type: str
  tls:
    description: Connect with TLS when O(url) is not given.
    type: bool
    default: false
  tls_ca_cert:
    description:
      - CA bundle (PEM) to verify the server's certificate with; needs TLS (O(tls) or a V(rediss) O(url)).
      - A file that is missing, unreadable or not PEM is reported as such, before connecting.
    type: path
  connect_timeout:
    description:
      - Seconds the whole connection may take - TCP connect, TLS handshake, authentication and the first
        C(PING) together, however slowly the server answers; failed connections are not retried.
      - After that, each command's whole reply must arrive within this time too.
      - Must be above 0 and at most 300.
    type: float
    default: 5.0
requirements:
  - redis (the Python client, redis-py), with hiredis for speed
"""
