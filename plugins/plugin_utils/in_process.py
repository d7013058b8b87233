# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run this collection's modules inside the controller's task worker when they target the controller.

Every runbook check talks to the platform over the network from the controller
(connection local). Executed the usual way, each module call packages the
module with AnsiballZ and starts a fresh Python that compiles
ansible.module_utils from a zip - about a second per call on this machine,
most of a runbook's diagnose time. Run in-process, the same module code (same
argument validation, check mode, no_log masking, result) costs a few
milliseconds more than its own work.

Anything else - another connection, become, async, a task environment, or
``AIAGENTS_RUNBOOKS_IN_PROCESS=0`` - runs the module the usual way.

The in-process path hands the arguments over through private globals of
``ansible.module_utils.basic`` (what AnsiballZ's wrapper sets), which ansible-core
may change in any release. meta/runtime.yml bounds ansible-core to the versions
tested; should those globals still not be what this code expects, every module
runs the usual way, with a warning, rather than failing or misreading its
arguments.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os

from ansible.module_utils import basic
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible.utils.vars import merge_hash
from ansible.vars.clean import remove_internal_keys

_LOCAL = ("local", "ansible.builtin.local")
# The private globals of ansible.module_utils.basic the in-process path sets (AnsiballZ's hand-over).
_GLOBALS = ("_ANSIBLE_ARGS", "_ANSIBLE_PROFILE", "_PARSED_MODULE_ARGS")
_warned: list[str] = []


def internals_problem(module=basic) -> str | None:
    """Why ``module`` (ansible.module_utils.basic) cannot take arguments in-process, or None when it can."""
    missing = [name for name in _GLOBALS if not hasattr(module, name)]
    if missing:
        return f"ansible.module_utils.basic has no {', '.join(missing)}"
    loader = getattr(module, "_load_params", None)
    if not callable(loader):
        return "ansible.module_utils.basic has no _load_params"
    return None


class InProcessModuleAction(ActionBase):
    """Action plugin base: run the module of the same name in-process when the target is the controller."""

    _supports_check_mode = True
    _supports_async = True

    def _in_process(self) -> bool:
        if os.environ.get("AIAGENTS_RUNBOOKS_IN_PROCESS", "1") == "0":
            return False
        environment = [entry for entry in self._task.environment or [] if entry]
        return (self._connection.transport in _LOCAL and not self._task.async_val and not self._play_context.become
                and not environment)

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp  # no temporary files on the target are used either way
        problem = internals_problem() if self._in_process() else None
        if problem and problem not in _warned:
            _warned.append(problem)
            Display().warning(f"aiagents.runbooks modules run the usual way (slower): {problem}, which the "
                              "in-process path needs; this ansible-core is not one the collection was tested with")
        if problem or not self._in_process():
            return merge_hash(result, self._execute_module(task_vars=task_vars, wrap_async=self._task.async_val))
        name = self._task.action.rsplit(".", 1)[-1]
        args = dict(self._task.args)
        self._update_module_args(self._task.action, args, task_vars)
        module = importlib.import_module(f"ansible_collections.aiagents.runbooks.plugins.modules.{name}")
        basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode()
        basic._ANSIBLE_PROFILE = "legacy"
        output = io.StringIO()
        try:
            with contextlib.redirect_stdout(output):
                module.main()
        except SystemExit:
            pass  # exit_json / fail_json end the module with sys.exit, as they do in its own process
        finally:
            basic._ANSIBLE_ARGS = basic._PARSED_MODULE_ARGS = None
        data = self._parse_returned_data({"rc": 0, "stdout": output.getvalue(), "stderr": ""}, "legacy")
        remove_internal_keys(data)
        return merge_hash(result, data)
