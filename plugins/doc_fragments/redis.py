# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection options shared by every module that talks to Redis."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  url:
    description:
      - Redis URL, for example V(redis://127.0.0.1:6379/0) or V(rediss://:secret@redis.example:6380/0).
      - Mutually exclusive with O(host), O(port), O(db), O(username), O(password) and O(tls).
      - May carry a password, so it is never logged.
    type: str
  host:
    description: Redis host when O(url) is not given. Defaults to V(127.0.0.1).
    type: str
  port:
    description: Redis port when O(url) is not given. Defaults to V(6379).
    type: int
  db:
    description: Database number when O(url) is not given. Defaults to V(0).
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
    description: CA bundle to verify the server's certificate with, when using TLS.
    type: path
  connect_timeout:
    description: Seconds to wait for the connection and for each command's reply.
    type: float
    default: 5.0
requirements:
  - redis (the Python client, redis-py), with hiredis for speed
"""
