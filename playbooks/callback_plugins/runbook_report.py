# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The runbook report, switched on for the collection's own playbooks.

Ansible loads the callback plugins beside a playbook without any setting, so the
runbooks write their report wherever the collection is installed, with or without
an ansible.cfg of ours. Enabling aiagents.runbooks.runbook_report as well (as the
checkout's ansible.cfg does) still writes one report: the first of the two to see
a play writes it.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: runbook_report
type: notification
short_description: The runbook report, on for the collection's playbooks without configuration
version_added: 1.1.0
description:
  - Loads M(aiagents.runbooks.runbook_report) for the playbooks of this directory; see that plugin.
"""

from ansible_collections.aiagents.runbooks.plugins.callback.runbook_report import CallbackModule as _Report


class CallbackModule(_Report):
    CALLBACK_NAME = "runbook_report_adjacent"
    CALLBACK_NEEDS_ENABLED = False
