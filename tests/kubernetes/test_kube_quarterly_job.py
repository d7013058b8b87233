"""The collection's quarterly-validation CronJob, run once on the sandbox cluster.

`sandbox quarterly-job --platform kubernetes` builds the execution environment
(execution-environment.yml, from the sandbox's debootstrap base image),
imports it into the node's containerd, applies
deploy/kubernetes/quarterly-validation and makes a Job from the CronJob: a
real pod of the EE running the read-only validation with the runbooks'
ServiceAccount token, against the platform on the cluster.
"""
from __future__ import annotations

import json
import shutil
import time

import yaml
from kubernetes import client

from tests.kubernetes.conftest import NAMESPACE, KubeSandbox

CRONJOB = "runbooks-quarterly-validation"


def test_the_quarterly_cronjob_runs_the_read_only_validation_with_the_runbooks_account(kube: KubeSandbox) -> None:
    from sandbox.kube import quarterly  # pylint: disable=import-outside-toplevel

    # A first review: no earlier one of this cluster to compare with (that comparison is Molecule's).
    shutil.rmtree(quarterly.REPORTS_DIR / "quarterly_validation", ignore_errors=True)
    started = time.time()
    result = kube.cli("quarterly-job", check=False, timeout=1800)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]

    batch = client.BatchV1Api(kube.api())
    cronjob = batch.read_namespaced_cron_job(CRONJOB, NAMESPACE)
    assert cronjob.spec.schedule == "0 6 1 1,4,7,10 *"  # every three months
    jobs = [job for job in batch.list_namespaced_job(NAMESPACE).items
            if any(owner.name == CRONJOB for owner in job.metadata.owner_references or [])
            and job.metadata.creation_timestamp.timestamp() >= started - 5]
    assert len(jobs) == 1, [job.metadata.name for job in jobs]
    job = jobs[0]
    assert job.status.succeeded == 1

    # The pod ran the EE image with the runbooks' least-privilege account, and no kubeconfig of ours.
    pod = kube.core().list_namespaced_pod(NAMESPACE, label_selector=f"job-name={job.metadata.name}").items[0]
    assert pod.spec.service_account_name == "runbooks"
    assert pod.spec.containers[0].image.endswith(quarterly.EE_IMAGE)
    inventory = kube.core().read_namespaced_config_map("runbooks-quarterly-inventory", NAMESPACE).data["hosts.yml"]
    assert "kubeconfig" not in inventory
    assert yaml.safe_load(inventory)["all"]["vars"]["runbooks_platform"] == "kubernetes"

    # The review it wrote to its claim: this run's, every runbook's diagnose completed on the cluster.
    review_file = quarterly.review_path()
    assert review_file.stat().st_mtime >= started
    review = json.loads(review_file.read_text())
    assert review["mode"] == "read-only"
    results = {run["runbook"]: run["result"] for run in review["runbooks"]}
    # every diagnose ran and passed; onboarding changes the platform, so read-only mode leaves it out
    assert results == {"high_queue_depth": "pass", "worker_failures": "pass", "database_connection_issues": "pass",
                       "api_timeout": "pass", "tenant_onboarding": "not run"}, review["runbooks"]
    assert review["platforms"] == ["kubernetes"]
    assert review["baseline"] is None
    assert review["health"] == "Green", review["action_items"]

    # No credential the pod mounted is in its log or in the review.
    log = kube.log(pod.metadata.name)
    assert "PLAY RECAP" in log
    for name, key in (("openai-credentials", "api_key"), ("sdp-credentials", "api_key"),
                      ("postgres", "admin_password")):
        value = kube.secret(name, key)
        assert value and value not in log and value not in review_file.read_text(), f"{name}/{key} leaked"

    batch.delete_namespaced_job(job.metadata.name, NAMESPACE, propagation_policy="Background")
