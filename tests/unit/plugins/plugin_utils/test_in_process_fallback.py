"""The in-process path falls back to the usual module run, with a warning, when ansible-core's internals change."""
from __future__ import annotations

import json
import types

import pytest
from ansible.module_utils import basic
from ansible.plugins.action import ActionBase

from ansible_collections.aiagents.runbooks.plugins.plugin_utils import in_process


def test_the_installed_ansible_core_has_what_the_in_process_path_needs():
    assert in_process.internals_problem() is None


@pytest.mark.parametrize("missing", ["_ANSIBLE_ARGS", "_ANSIBLE_PROFILE", "_PARSED_MODULE_ARGS", "_load_params"])
def test_a_missing_internal_is_named(missing):
    fake = types.SimpleNamespace(_ANSIBLE_ARGS=None, _ANSIBLE_PROFILE=None, _PARSED_MODULE_ARGS=None,
                                 _load_params=lambda: {})
    delattr(fake, missing)
    assert missing in in_process.internals_problem(fake)


def action(monkeypatch, warnings):
    plugin = object.__new__(in_process.InProcessModuleAction)
    plugin._task = types.SimpleNamespace(action="aiagents.runbooks.preflight_info", args={}, async_val=0,
                                         environment=[])
    plugin._connection = types.SimpleNamespace(transport="local")
    plugin._play_context = types.SimpleNamespace(become=False)
    monkeypatch.setattr(ActionBase, "run", lambda self, tmp=None, task_vars=None: {})
    monkeypatch.setattr(in_process.InProcessModuleAction, "_execute_module",
                        lambda self, task_vars=None, wrap_async=False: {"ran": "the usual way"}, raising=False)
    monkeypatch.setattr(in_process.Display, "warning", lambda self, message: warnings.append(message))
    monkeypatch.setattr(in_process, "_warned", [])
    return plugin


def test_changed_internals_run_the_module_the_usual_way_with_a_warning(monkeypatch):
    warnings: list[str] = []
    plugin = action(monkeypatch, warnings)
    monkeypatch.delattr(basic, "_ANSIBLE_PROFILE")
    assert plugin.run(task_vars={}) == {"ran": "the usual way"}
    assert plugin.run(task_vars={}) == {"ran": "the usual way"}
    assert len(warnings) == 1 and "_ANSIBLE_PROFILE" in warnings[0] and "usual way" in warnings[0]


def test_expected_internals_run_in_process(monkeypatch):
    warnings: list[str] = []
    plugin = action(monkeypatch, warnings)
    monkeypatch.setattr(plugin, "_update_module_args", lambda name, args, task_vars: None, raising=False)
    monkeypatch.setattr(plugin, "_parse_returned_data",
                        lambda data, profile: json.loads(data["stdout"]), raising=False)
    result = plugin.run(task_vars={})
    assert "ran" not in result and "libraries" in result  # preflight_info's own answer, from this process
    assert warnings == []
