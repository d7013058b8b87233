"""Every HTTP module's timeout bounds its whole run, against servers that trickle or never answer.

Timed in-process (the module's own code, without Ansible's start-up), so the
bound is measured precisely: the timeout plus scheduling slack, never a
multiple of it.
"""

from __future__ import annotations

import json
import time

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.aiagents.runbooks.plugins.module_utils import _http_probe, _jaeger, _prometheus
from ansible_collections.aiagents.runbooks.plugins.module_utils._errors import RunbookError
from ansible_collections.aiagents.runbooks.plugins.modules import (http_probe_info, jaeger_traces_info,
                                                                   prometheus_info, webhook_send)
from tests.harness.slow import silent_server, trickle_server

TIMEOUT = 2.0
BOUND = TIMEOUT + 0.8  # scheduling slack on a busy 2-core machine; a per-read timeout would take 60 s and more
SERVERS = [pytest.param(trickle_server, id="trickle"), pytest.param(silent_server, id="silent")]


def run_main(module, args, capsys):
    started = time.monotonic()
    with patch_module_args(args), pytest.raises(SystemExit):
        module.main()
    return time.monotonic() - started, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("server", SERVERS)
def test_probes_end_at_the_timeout(server):
    with server() as slow:
        endpoints = [{"name": f"API {n}", "url": f"http://127.0.0.1:{slow.port}/v1/models"} for n in range(3)]
        started = time.monotonic()
        results = _http_probe.probe_all(endpoints, TIMEOUT, 2, 10)
        elapsed = time.monotonic() - started
    assert [item["error"] for item in results] == ["timeout"] * 3
    assert [item["classification"] for item in results] == ["timeout"] * 3
    assert elapsed <= BOUND, elapsed


@pytest.mark.parametrize("server", SERVERS)
def test_prometheus_requests_share_one_deadline(server):
    """Twelve requests on eight threads would take two timeouts if each had its own."""
    with server() as slow:
        prometheus = _prometheus.Prometheus(f"http://127.0.0.1:{slow.port}", TIMEOUT)
        params = {"include": None, "queries": {"extra": "up"}, "trend_window": 900, "trend_step": None,
                  "trend_min_change": 5}
        started = time.monotonic()
        with pytest.raises(RunbookError) as caught:
            _prometheus.collect(prometheus, params)
        elapsed = time.monotonic() - started
    assert str(caught.value).endswith("no complete answer within 2 s")
    assert elapsed <= BOUND, elapsed


@pytest.mark.parametrize("server", SERVERS)
def test_jaeger_search_ends_at_the_timeout(server):
    with server() as slow:
        started = time.monotonic()
        with pytest.raises(RunbookError) as caught:
            _jaeger.search(f"http://127.0.0.1:{slow.port}", {"service": "ai-agents-worker", "lookback": "1h", "limit": 10}, TIMEOUT, True)
        elapsed = time.monotonic() - started
    assert str(caught.value) == f"search traces in jaeger at http://127.0.0.1:{slow.port}: no complete answer within 2 s"
    assert elapsed <= BOUND, elapsed


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize(("module", "args"), [
    (http_probe_info, lambda url: {"endpoints": [{"name": "API", "url": url}, {"name": "API 2", "url": url}]}),
    (prometheus_info, lambda url: {"url": url}),
    (jaeger_traces_info, lambda url: {"url": url}),
    (webhook_send, lambda url: {"url": url, "body": {"ticket": {"id": "T-1"}}, "secret": "whsec-0123456789"}),
], ids=["http_probe_info", "prometheus_info", "jaeger_traces_info", "webhook_send"])
def test_each_module_run_ends_at_its_timeout(server, module, args, capsys):
    with server() as slow:
        elapsed, result = run_main(module, {**args(f"http://127.0.0.1:{slow.port}/x"), "timeout": TIMEOUT}, capsys)
    assert "no complete answer within 2 s" in json.dumps(result), result
    assert elapsed <= BOUND, elapsed
