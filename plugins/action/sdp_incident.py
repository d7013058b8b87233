# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs the sdp_incident module in-process when it targets the controller (see plugin_utils/in_process.py)."""

from __future__ import annotations

from ansible_collections.aiagents.runbooks.plugins.plugin_utils.in_process import InProcessModuleAction


class ActionModule(InProcessModuleAction):
    pass
