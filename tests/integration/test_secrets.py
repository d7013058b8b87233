"""No credential in any output: every credential-bearing option of every module, seeded with a distinct
secret, on success and failure paths, at -vvv, in-process and the usual AnsiballZ way.

Greps what an operator or a ticket could ever see: ansible-playbook's stdout and stderr, the registered
results, and the runbook report (JSON and Markdown) the run wrote.
"""

from __future__ import annotations

import json
import secrets as secrets_module
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml

from tests.harness.ansible import run_playbook_cli
from tests.harness.chaos import ChaosServer
from tests.harness.servers import RedisServer, free_port, throwaway


def _secret(label: str) -> str:
    return f"Zq{label}{secrets_module.token_hex(6)}Xk"


def _task(module: str, args: dict[str, Any], name: str) -> dict[str, Any]:
    return {"name": name, f"aiagents.runbooks.{module}": args, "register": "result", "ignore_errors": True,
            "no_log": False}


def _record(name: str) -> dict[str, Any]:
    return {"name": f"keep what {name} registered",
            "ansible.builtin.set_fact": {"registered": "{{ registered | default({}) | combine({'"
                                                       + name + "': result}) }}"}}


@pytest.fixture(scope="module")
def seeded(postgres_cluster):
    """Servers whose credentials are seeded secrets, the secrets, and the calls that carry them."""
    core = _secret("redis")
    redis_password = f"p/{core}#x"  # a / and a # a URL parser would cut the password at
    with throwaway(lambda workdir: RedisServer(workdir, password=redis_password), "redis-secrets") as redis:
        chaos = ChaosServer()
        try:
            yield redis, chaos, redis_password, core
        finally:
            chaos.close()


def _calls(redis: RedisServer, chaos: ChaosServer, redis_password: str, redis_core: str,
           postgres) -> tuple[list, list[str]]:
    closed = free_port()
    s = {label: _secret(label) for label in (
        "wrongredis", "celery", "pgconnect", "pgapp", "probeuser", "probequery", "probeheader", "probebearer",
        "promuser", "jaegeruser", "webhooktoken", "webhooksecret", "ctl")}
    right_url = f"redis://:{quote(redis_password, safe='')}@127.0.0.1:{redis.port}/0"
    raw_url = f"redis://:{redis_password}@127.0.0.1:{redis.port}/0"  # unencoded: the parser cuts it
    wrong_url = f"redis://:{s['wrongredis']}/#@127.0.0.1:{redis.port}/0"
    pg = {"login_host": "127.0.0.1", "login_port": postgres.port, "login_user": "postgres",
          "login_password": postgres.password, "login_db": "postgres", "connect_timeout": 3}
    chaos_url = f"http://127.0.0.1:{chaos.port}"
    probe = {"name": "sdp", "url": f"http://{s['probeuser']}@127.0.0.1:{{port}}/api/v3/requests"
                                   f"?api_key={s['probequery']}",
             "headers": {"X-Api-Key": s["probeheader"]}, "bearer_token": s["probebearer"]}
    calls = [
        ("redis_queue_info", {"url": right_url, "connect_timeout": 2}, "redis ok"),
        ("redis_queue_info", {"host": "127.0.0.1", "port": redis.port, "password": redis_password,
                              "connect_timeout": 2}, "redis password option ok"),
        ("redis_queue_info", {"url": raw_url, "connect_timeout": 2}, "redis unencoded password"),
        ("redis_queue_info", {"url": wrong_url, "connect_timeout": 2}, "redis wrong password"),
        ("redis_queue_quarantine", {"url": right_url, "ticket_ids": ["T-404"], "connect_timeout": 2,
                                    "reason": "secrets test"},
         "quarantine ok"),
        ("redis_queue_quarantine", {"host": "127.0.0.1", "port": redis.port, "password": s["wrongredis"],
                                    "ticket_ids": ["T-404"], "connect_timeout": 2, "reason": "secrets test"},
         "quarantine wrong password"),
        ("celery_workers_info", {"url": right_url, "timeout": 0.5, "confirm_timeout": 0.5, "connect_timeout": 2},
         "celery ok"),
        ("celery_workers_info", {"url": f"redis://:{s['celery']}@127.0.0.1:{redis.port}/0", "timeout": 0.5,
                                 "confirm_timeout": 0.5, "connect_timeout": 2}, "celery wrong password"),
        ("postgresql_activity_info", pg, "postgres ok"),
        ("postgresql_activity_info", {**pg, "connect_params": {"password": s["pgconnect"]}},
         "postgres connect_params password"),
        ("postgresql_activity_info", {**pg, "login_password": s["pgconnect"]}, "postgres wrong password"),
        ("postgresql_rls_info", {**pg, "app_role": "no_such_role", "app_password": s["pgapp"]}, "rls app password"),
        ("http_probe_info", {"endpoints": [{**probe, "url": probe["url"].format(port=chaos.port)}], "timeout": 2},
         "probe ok"),
        ("http_probe_info", {"endpoints": [{**probe, "url": probe["url"].format(port=closed)}], "timeout": 2},
         "probe refused"),
        ("http_probe_info", {"endpoints": [{**probe, "url": probe["url"].format(port=chaos.port),
                                            "headers": {"X-Api-Key": "ab\x01" + s["probeheader"]}}], "timeout": 2},
         "probe control character in a header"),
        ("prometheus_info", {"url": f"http://ops:{s['promuser']}@127.0.0.1:{chaos.port}", "timeout": 2},
         "prometheus ok"),
        ("prometheus_info", {"url": f"http://ops:{s['promuser']}@127.0.0.1:{closed}", "timeout": 2},
         "prometheus refused"),
        ("jaeger_traces_info", {"url": f"http://ops:{s['jaegeruser']}@127.0.0.1:{chaos.port}", "timeout": 2},
         "jaeger ok"),
        ("jaeger_traces_info", {"url": f"http://ops:{s['jaegeruser']}@127.0.0.1:{closed}", "timeout": 2},
         "jaeger refused"),
        ("webhook_send", {"url": f"{chaos_url}/webhook/servicedesk?tenant_id=a&token={s['webhooktoken']}",
                          "body": {"ticket": "T-1"}, "secret": s["webhooksecret"], "timeout": 2}, "webhook ok"),
        ("webhook_send", {"url": f"http://127.0.0.1:{closed}/webhook?token={s['webhooktoken']}",
                          "body": {"ticket": "T-1"}, "secret": s["webhooksecret"], "timeout": 2}, "webhook refused"),
    ]
    return calls, [*s.values(), redis_core, postgres.password]


@pytest.mark.parametrize("in_process", ["1", "0"], ids=["in-process", "ansiballz"])
def test_no_seeded_secret_reaches_output_results_or_report(seeded, postgres_cluster, tmp_path: Path,
                                                           in_process: str) -> None:
    calls, secrets = _calls(*seeded, postgres_cluster)
    tasks = []
    for module, args, name in calls:
        tasks += [_task(module, args, name), _record(name)]
    tasks.append({"name": "write what was registered", "ansible.builtin.copy": {
        "content": "{{ registered | to_nice_json }}", "dest": str(tmp_path / "registered.json"), "mode": "0600"}})
    playbook = tmp_path / "secrets.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "Every credential-bearing option, success and failure", "hosts": "localhost",
        "connection": "local", "gather_facts": False,
        "vars": {"runbook_name": "secrets_probe", "runbooks_report_dir": str(tmp_path / "reports")},
        "tasks": tasks}], sort_keys=False))

    run = run_playbook_cli(playbook, verbosity=3, env={"AIAGENTS_RUNBOOKS_IN_PROCESS": in_process}, timeout=600)

    registered = (tmp_path / "registered.json").read_text()
    # A check reports a target it cannot reach or log in to as a finding; an action fails.
    went_wrong = {name: bool(result.get("failed") or [finding for finding in result.get("findings", [])
                                                      if finding["id"].endswith(("_unreachable", "_auth_failed"))])
                  for name, result in json.loads(registered).items()}
    # Both paths really ran: the right credentials worked, the wrong ones did not.
    assert [name for name in ("redis ok", "redis password option ok", "quarantine ok", "probe ok", "webhook ok",
                              "jaeger ok", "prometheus ok") if went_wrong[name]] == [], registered
    assert [name for name in ("redis wrong password", "postgres wrong password", "webhook refused",
                              "prometheus refused", "probe control character in a header")
            if not went_wrong[name]] == [], registered
    reports = [path.read_text() for path in (tmp_path / "reports").rglob("*") if path.is_file()]
    assert reports, "the run wrote no report"
    places = {"stdout": run.stdout, "stderr": run.stderr, "registered": registered, "report": "\n".join(reports)}
    leaks = {place: [secret for secret in secrets if secret in text] for place, text in places.items()}
    assert leaks == {place: [] for place in places}, leaks
