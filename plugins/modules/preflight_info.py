#!/usr/bin/python
# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check that the controller can run the runbooks before any runbook starts."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: preflight_info
short_description: Check the Python libraries the runbooks need
version_added: 1.0.0
description:
  - Imports each library the runbooks rely on (Redis, PostgreSQL, Docker,
    Kubernetes, Celery clients) and reports its version.
  - A required library that cannot be imported becomes a C(dependency_missing)
    finding, so a playbook can stop with one clear message instead of a
    traceback deep inside a later task.
  - Read-only; never reports a change.
author:
  - AI Agents Platform SRE team (@aiagents-sre)
options:
  require:
    description:
      - Libraries that must be importable, by the names in RV(libraries).
      - Libraries not listed are still reported, but their absence is not a finding; a name listed twice is one
        finding.
    type: list
    elements: str
    default: []
    choices: [redis, psycopg2, docker, kubernetes, celery]
extends_documentation_fragment:
  - aiagents.runbooks.attributes.info
"""

EXAMPLES = r"""
- name: Stop early when the Redis client is missing
  aiagents.runbooks.preflight_info:
    require: [redis]
  register: preflight
  failed_when: preflight.findings | length > 0
"""

RETURN = r"""
libraries:
  description: Each known library, whether it imports, and its version.
  returned: always
  type: dict
  sample: {"redis": {"available": true, "version": "8.1.0", "module": "redis"}}
findings:
  description: One C(dependency_missing) finding per required library that does not import.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Finding id.
      type: str
      returned: always
    severity:
      description: Always C(critical); nothing can be diagnosed without it.
      type: str
      returned: always
    summary:
      description: What is missing.
      type: str
      returned: always
    evidence:
      description: The import error.
      type: dict
      returned: always
    resolution:
      description: How to install it.
      type: str
      returned: always
python:
  description: The interpreter the modules run under.
  returned: always
  type: str
  sample: /work/main/.venv/bin/python3
"""

import importlib
import sys

from ansible_collections.aiagents.runbooks.plugins.module_utils._findings import finding
from ansible_collections.aiagents.runbooks.plugins.module_utils._redact import RunbookModule

# Library name -> (import name, pip requirement that provides it).
LIBRARIES = {
    "redis": ("redis", "redis[hiredis]"),
    "psycopg2": ("psycopg2", "psycopg2-binary"),
    "docker": ("docker", "docker"),
    "kubernetes": ("kubernetes", "kubernetes"),
    "celery": ("celery", "celery"),
}


def probe(import_name: str) -> dict:
    try:
        module = importlib.import_module(import_name)
    # Any import failure means "unusable", whatever its cause - even a broken install's sys.exit() at import,
    # which would otherwise end this module without an answer.
    except (Exception, SystemExit) as exc:  # pylint: disable=broad-except
        return {"available": False, "module": import_name, "error": f"{type(exc).__name__}: {exc}"}
    return {"available": True, "module": import_name, "version": str(getattr(module, "__version__", "unknown"))}


def main() -> None:
    module = RunbookModule(
        argument_spec={"require": {"type": "list", "elements": "str", "default": [], "choices": sorted(LIBRARIES)}},
        supports_check_mode=True,
    )
    libraries = {name: probe(import_name) for name, (import_name, _requirement) in LIBRARIES.items()}
    findings = [
        finding(
            "dependency_missing",
            "critical",
            f"Python library {name!r} cannot be imported by {sys.executable}",
            evidence={"library": name, "error": libraries[name]["error"]},
            resolution=f"Run scripts/bootstrap.sh, or pip install '{LIBRARIES[name][1]}' into that interpreter.",
        )
        for name in dict.fromkeys(module.params["require"])
        if not libraries[name]["available"]
    ]
    module.exit_json(changed=False, libraries=libraries, findings=findings, python=sys.executable)


if __name__ == "__main__":
    main()
