"""The intake judged from the webhook API's metrics and logs: refused jobs, 5xx answers, and neither."""
from __future__ import annotations

from ansible_collections.aiagents.runbooks.plugins.filter.runbooks import intake_findings
from ansible_collections.aiagents.runbooks.plugins.module_utils._workers import analyse_logs


def metrics(total=None, failed=0.0, refused=None):
    def ok(value):
        return {"status": "ok", "value": value, "series": [{"labels": {}, "value": value}]}
    series = [{"labels": {"reason": reason}, "value": count} for reason, count in (refused or {}).items()]
    return {"metrics": {"intake_per_second": ok(total) if total is not None else {"status": "empty", "value": None},
                        "intake_5xx_per_second": ok(failed),
                        "intake_enqueue_errors": {"status": "ok", "value": None, "series": series}}}


def test_a_quiet_or_healthy_intake_has_no_finding():
    assert intake_findings(metrics(total=0.0)) == []
    assert intake_findings(metrics(total=2.0, refused={"oom": 0, "other": 0.0})) == []


def test_jobs_the_queue_refused_are_critical_when_most_webhooks_fail():
    (found,) = intake_findings(metrics(total=0.05, failed=0.05, refused={"oom": 5.9, "readonly": 0}))
    assert found["id"] == "intake_enqueue_failing" and found["severity"] == "critical"
    assert found["evidence"]["refused_by_reason_2m"] == {"oom": 6} and found["evidence"]["failed_share"] == 1.0
    assert "could not queue 6 jobs (oom 6); 100% of webhooks answered 5xx" in found["summary"]
    (few,) = intake_findings(metrics(total=1.0, failed=0.1, refused={"misconf": 3}))
    assert few["severity"] == "high"
    assert intake_findings(metrics(total=1.0, failed=0.1, refused={"misconf": 3}), error_share=0.05)[0][
        "severity"] == "critical"


def test_the_logs_name_the_refused_tickets_to_send_again():
    lines = ["2026-11-30 INFO aiagents.api webhook queued tenant_id=acme-corp ticket_id=T-1",
             "2026-11-30 ERROR aiagents.api enqueue failed tenant_id=acme-corp ticket_id=T-2: oom: command not "
             "allowed when used memory > 'maxmemory'.",
             "2026-11-30 ERROR aiagents.api enqueue failed tenant_id=globex ticket_id=T-3: readonly: You can't "
             "write against a read only replica."]
    signals = analyse_logs(lines)
    assert signals["enqueue_failed"] == {"count": 2, "reasons": {"oom": 1, "readonly": 1}, "since_queued": 2,
                                         "tickets": [{"tenant_id": "acme-corp", "ticket_id": "T-2"},
                                                     {"tenant_id": "globex", "ticket_id": "T-3"}]}
    assert signals["oom"] == 0 and signals["exceptions"] == {}  # the api's account, not a crash of its own
    # Prometheus without the intake's metrics: the logs alone say so; the rate is unknown, so critical
    (found,) = intake_findings({"metrics": {}}, [{"signals": signals}])
    assert found["id"] == "intake_enqueue_failing" and found["severity"] == "critical"
    assert found["evidence"]["refused_tickets"][-1] == {"tenant_id": "globex", "ticket_id": "T-3"}
    assert "rate is unknown" in found["summary"]


def test_5xx_with_no_job_refused_points_to_the_database():
    (found,) = intake_findings(metrics(total=1.0, failed=0.8))
    assert found["id"] == "intake_server_errors" and found["runbook"] == "database_connection_issues"


def test_a_job_queued_after_the_last_refusal_means_the_intake_recovered():
    lines = ["2026-11-30 ERROR aiagents.api enqueue failed tenant_id=acme-corp ticket_id=T-2: oom: refused",
             "2026-11-30 INFO aiagents.api webhook queued tenant_id=acme-corp ticket_id=T-4"]
    signals = analyse_logs(lines)
    assert signals["enqueue_failed"]["count"] == 1 and signals["enqueue_failed"]["since_queued"] == 0
    # the metrics' window still holds the refusal; the logs say it is past
    assert intake_findings(metrics(total=0.05, failed=0.01, refused={"oom": 1}), [{"signals": signals}]) == []
    # an intake whose logs say nothing either way is judged on its metrics
    assert intake_findings(metrics(total=0.05, failed=0.01, refused={"oom": 1}), [{"signals": {}}])[0]["id"] == \
        "intake_enqueue_failing"
