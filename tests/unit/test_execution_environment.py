"""The execution environment's definition: valid for ansible-builder, built on
the sandbox's own base image, and carrying every Python package the
collection's modules import, at the project's pins.

The image itself is built and run by tests/kubernetes/test_kube_quarterly_job.py.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from ansible_builder.user_definition import UserDefinition

from ansible_collections.aiagents.runbooks.plugins.modules import preflight_info

REPO = Path(__file__).resolve().parents[2]


def pins(path: Path) -> dict[str, str]:
    """name (lowercase, no extras) -> version, of the `name==version` lines of a requirements file."""
    found = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)(\[[^\]]*\])?==([^\s#]+)", line.strip())
        if match:
            found[match.group(1).lower()] = match.group(3)
    return found


@pytest.fixture(scope="module")
def definition() -> UserDefinition:
    built = UserDefinition(str(REPO / "execution-environment.yml"))
    built.validate()  # ansible-builder's own schema and file checks
    return built


def test_the_definition_is_valid_and_builds_from_the_sandbox_base_image(definition: UserDefinition) -> None:
    env = dict(line.split("=", 1) for line in (REPO / "sandbox" / "sandbox.env").read_text().splitlines()
               if "=" in line and not line.startswith("#"))
    raw = yaml.safe_load((REPO / "execution-environment.yml").read_text())
    assert raw["images"]["base_image"]["name"] == env["SANDBOX_BASE_IMAGE"]
    # the quarterly validation starts each runbook with the ansible-playbook beside its interpreter
    assert definition.python_path == "/opt/ee/bin/python3"


def test_ansible_core_and_runner_are_the_projects_pins(definition: UserDefinition) -> None:
    project = pins(REPO / "requirements.txt")
    assert definition.ansible_core_ref == f"ansible-core=={project['ansible-core']}"
    assert definition.ansible_runner_ref == f"ansible-runner=={project['ansible-runner']}"
    assert pins(REPO / "ee" / "requirements.txt") == {"ansible": project["ansible"]}


def test_the_collection_declares_every_library_its_modules_import_at_the_projects_pins() -> None:
    declared = yaml.safe_load((REPO / "meta" / "execution-environment.yml").read_text())
    ee_pins = pins(REPO / declared["dependencies"]["python"])
    required = {requirement.split("[", maxsplit=1)[0].lower() for _name, requirement in preflight_info.LIBRARIES.values()}
    missing = required - set(ee_pins)
    assert not missing, f"meta/ee-requirements.txt lacks {sorted(missing)}"
    project = pins(REPO / "requirements.txt")
    drift = {name: (version, project.get(name)) for name, version in ee_pins.items() if project.get(name) != version}
    assert not drift, f"pins differ from requirements.txt: {drift}"
