"""The checkout is the collection, and the built tarball works the same way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def ansible(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {key: value for key, value in os.environ.items() if key != "ANSIBLE_CONFIG"}
    full_env.update({"PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "ANSIBLE_NOCOLOR": "1", **(env or {})})
    return subprocess.run(args, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=300, check=False)


def test_playbook_runs_from_the_checkout_with_no_install_step():
    run = ansible("ansible-playbook", "playbooks/preflight.yml", cwd=REPO)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "redis 8." in run.stdout
    assert "failed=0" in run.stdout


def test_built_tarball_installs_and_runs_the_same_playbook(tmp_path):
    build = ansible("ansible-galaxy", "collection", "build", "--output-path", str(tmp_path), cwd=REPO)
    assert build.returncode == 0, build.stdout + build.stderr
    tarball = next(tmp_path.glob("aiagents-runbooks-*.tar.gz"))
    listing = subprocess.run(["tar", "-tzf", str(tarball)], capture_output=True, text=True, check=True).stdout.split()
    assert "plugins/modules/preflight_info.py" in listing
    assert "playbooks/worker-failures.yml" in listing and "worker-failures.yml" not in listing
    tops = {name.split("/")[0] for name in listing}
    assert not tops & {".collections", ".venv", "sandbox", "reports"}, tops

    installed = tmp_path / "collections"
    # --no-deps: Galaxy is unreachable; the dependencies ship in the `ansible` package.
    install = ansible("ansible-galaxy", "collection", "install", "--no-deps", "--force", "-p", str(installed), str(tarball), cwd=tmp_path)
    assert install.returncode == 0, install.stdout + install.stderr
    assert (installed / "ansible_collections/aiagents/runbooks/plugins/modules/preflight_info.py").is_file()

    # Outside the checkout (so no repo ansible.cfg): only the installed copy can answer.
    run = ansible(
        "ansible-playbook", "-i", "localhost,", "-c", "local",
        str(installed / "ansible_collections/aiagents/runbooks/playbooks/preflight.yml"),
        cwd=tmp_path,
        env={"ANSIBLE_COLLECTIONS_PATH": str(installed), "ANSIBLE_PYTHON_INTERPRETER": sys.executable},
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "celery 5." in run.stdout


def test_ansible_doc_renders_every_module_with_examples_and_return():
    modules = sorted(path.stem for path in (REPO / "plugins/modules").glob("*.py"))
    assert {"redis_queue_info", "redis_queue_quarantine", "celery_workers_info"} <= set(modules)
    for name in modules:
        run = ansible("ansible-doc", f"aiagents.runbooks.{name}", cwd=REPO, env={"ANSIBLE_PAGER": "cat", "PAGER": "cat"})
        assert run.returncode == 0, run.stderr
        assert "EXAMPLES:" in run.stdout and "RETURN VALUES:" in run.stdout, name
        assert f"aiagents.runbooks.{name}:" in run.stdout, f"{name} EXAMPLES do not call the module"
        assert "sample:" in run.stdout, f"{name} RETURN has no samples"


# The runbook index's names (seed/runbooks-index.md) beside the collection's FQCN names.
INDEX_NAMES = {"high-queue-depth": "high_queue_depth", "worker-failures": "worker_failures",
               "database-connection-issues": "database_connection_issues", "api-timeout": "api_timeout",
               "tenant-onboarding": "tenant_onboarding"}


def _task_list(playbook: str) -> list[str]:
    run = ansible("ansible-playbook", playbook, "--tags", "diagnose", "--list-tasks", cwd=REPO)
    assert run.returncode == 0, run.stdout + run.stderr
    return [line.strip() for line in run.stdout.splitlines() if "TAGS:" in line and "play #" not in line]


def test_each_runbook_answers_to_its_index_name_from_the_root_and_playbooks_and_to_its_fqcn():
    for index_name, name in INDEX_NAMES.items():
        source = (REPO / "playbooks" / f"{name}.yml").resolve()
        for alias in (REPO / f"{index_name}.yml", REPO / "playbooks" / f"{index_name}.yml"):
            assert alias.is_symlink() and alias.resolve() == source, f"{alias} is not a link to {source}"
        tasks = _task_list(f"aiagents.runbooks.{name}")
        assert tasks, name
        assert _task_list(f"{index_name}.yml") == tasks
        assert _task_list(f"playbooks/{index_name}.yml") == tasks


def closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_installed_collection_writes_its_report_in_a_plain_project(tmp_path):
    """No ansible.cfg of ours: the report callback comes with the collection's playbooks."""
    build = ansible("ansible-galaxy", "collection", "build", "--output-path", str(tmp_path), cwd=REPO)
    assert build.returncode == 0, build.stdout + build.stderr
    tarball = next(tmp_path.glob("aiagents-runbooks-*.tar.gz"))
    installed = tmp_path / "collections"
    install = ansible("ansible-galaxy", "collection", "install", "--no-deps", "--force", "-p", str(installed),
                      str(tarball), cwd=tmp_path)
    assert install.returncode == 0, install.stdout + install.stderr
    project = tmp_path / "project"
    project.mkdir()
    port = closed_port()
    run = ansible("ansible-playbook", "-i", "localhost,", "-c", "local", "aiagents.runbooks.high_queue_depth",
                  "--tags", "diagnose", "-e", f"runbooks_redis_url=redis://127.0.0.1:{port}/0",
                  "-e", f"runbooks_prometheus_url=http://127.0.0.1:{port}", cwd=project,
                  env={"ANSIBLE_COLLECTIONS_PATH": str(installed), "ANSIBLE_PYTHON_INTERPRETER": sys.executable})
    assert run.returncode == 0, run.stdout + run.stderr
    assert not (project / "ansible.cfg").exists()
    report = json.loads((project / "reports/high_queue_depth/latest.json").read_text())
    assert report["findings"][0]["id"] == "redis_unreachable" and report["verdict"] == "down"
    assert (project / "reports/high_queue_depth/latest.md").read_text().startswith("# Runbook high_queue_depth")
    assert not list((project / "reports/high_queue_depth").glob(".*.part"))
    assert run.stdout.count("runbook report:") == 1


def test_a_templated_report_dir_and_a_play_that_fails_half_way(tmp_path):
    """The report directory may be a template; a run that stops still leaves its report, naming where."""
    run = ansible("ansible-playbook", "playbooks/worker_failures.yml", "--tags", "diagnose",
                  "-e", f"report_base={tmp_path}", "-e", "runbooks_report_dir={{ report_base }}/incident-42",
                  cwd=REPO, env={"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"})
    assert run.returncode != 0
    assert run.stdout.count("runbook report:") == 1  # enabled by ansible.cfg and beside the playbook: one report
    report = json.loads((tmp_path / "incident-42/worker_failures/latest.json").read_text())
    assert report["result"] == "failed"
    assert report["failed_at"] == "platform : Describe the worker containers and judge them"
    assert "Stopped at: platform : Describe the worker containers" in \
        (tmp_path / "incident-42/worker_failures/latest.md").read_text()


def test_the_report_names_the_platform_an_inventory_sets_in_group_vars(tmp_path):
    """runbooks_platform lives in the inventory's group_vars/ (read by a vars plugin, not the group's own vars)."""
    inventory = tmp_path / "inventory"
    (inventory / "group_vars" / "all").mkdir(parents=True)
    (inventory / "hosts.yml").write_text("all:\n  hosts:\n    localhost:\n      ansible_connection: local\n")
    (inventory / "group_vars" / "all" / "platform.yml").write_text(
        f"runbooks_platform: kubernetes\nplatform_kubernetes_kubeconfig: {tmp_path}/no.kubeconfig\n"
        f"runbooks_report_dir: {tmp_path}/reports\n")
    run = ansible("ansible-playbook", "-i", str(inventory), "playbooks/worker_failures.yml", "--tags", "diagnose",
                  cwd=REPO, env={"ANSIBLE_PYTHON_INTERPRETER": sys.executable})
    report = json.loads((tmp_path / "reports/worker_failures/latest.json").read_text())
    assert report["platform"] == "kubernetes"
    # The provider asked was the Kubernetes one: its first call needs the kubeconfig, and says so.
    assert report["failed_at"] == "platform : Check the kubeconfig the inventory names", run.stdout[-2000:]
    assert f"platform_kubernetes_kubeconfig {tmp_path}/no.kubeconfig does not exist on the controller" in run.stdout
    assert "Callback dispatch" not in run.stdout + run.stderr
