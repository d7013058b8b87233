"""The collection's quarterly-validation CronJob (deploy/kubernetes/quarterly-validation)
on the sandbox cluster, and one run of it now (`sandbox quarterly-job --platform kubernetes`).

The manifests are the collection's own, applied as they are except for what
the sandbox cluster lacks:

* Services: the cluster has no kube-proxy and every platform pod uses the
  node's network on loopback ports, so the Job's pod does too
  (`hostNetwork`), and reaches the API server at its loopback address;
* addresses: the inventory is the sandbox's own
  (inventories/sandbox_kubernetes), without the kubeconfig (the pod's
  ServiceAccount token is used) and with the credentials read from the
  Secrets the CronJob mounts;
* storage: the reports' claim binds to a directory of the node under the
  sandbox's state, as PostgreSQL's does.
"""
from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from . import cluster, platform

REPO = cluster.SANDBOX.parent
MANIFESTS = REPO / "deploy" / "kubernetes" / "quarterly-validation"
INVENTORY = REPO / "inventories" / "sandbox_kubernetes"
EE_IMAGE = "aiagents-runbooks/ee:1.0.0"
CRONJOB = "runbooks-quarterly-validation"
REPORTS_CLAIM = "runbooks-quarterly-reports"
REPORTS_VOLUME = "aiagents-sandbox-quarterly-reports"
REPORTS_DIR = cluster.STATE / "volumes" / "quarterly-reports"
# The EE's user (execution-environment.yml options.user); group 0 as OpenShift and AWX run it.
EE_UID = 1000
# Where the sandbox's inventory reads credentials, and where the CronJob mounts them.
SECRETS_ON_CONTROLLER = "{{ inventory_dir }}/../../sandbox/secrets/"
SECRETS_IN_POD = "/runner/secrets/"
say = cluster.say


def sandbox_inventory() -> dict[str, Any]:
    """inventories/sandbox_kubernetes as one document, as the Job's pod sees it."""
    hosts = yaml.safe_load((INVENTORY / "hosts.yml").read_text())
    variables: dict[str, Any] = {}
    for path in sorted((INVENTORY / "group_vars" / "all").glob("*.yml")):
        variables |= yaml.safe_load(path.read_text()) or {}
    variables.pop("platform_kubernetes_kubeconfig", None)

    def in_pod(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace(SECRETS_ON_CONTROLLER, SECRETS_IN_POD)
        if isinstance(value, list):
            return [in_pod(item) for item in value]
        if isinstance(value, dict):
            return {key: in_pod(item) for key, item in value.items()}
        return value

    hosts["all"]["vars"] = in_pod(variables)
    left = [line for line in yaml.safe_dump(hosts).splitlines() if "inventory_dir" in line]
    if left:
        raise cluster.ClusterError(f"the sandbox inventory names controller paths the pod lacks: {left}")
    return hosts


def reports_volume() -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": REPORTS_VOLUME},
        "spec": {"capacity": {"storage": "256Mi"}, "accessModes": ["ReadWriteOnce"],
                 "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "",
                 "hostPath": {"path": str(REPORTS_DIR), "type": "Directory"},
                 "claimRef": {"namespace": platform.NAMESPACE, "name": REPORTS_CLAIM}},
    }


def manifests() -> list[dict[str, Any]]:
    """deploy/kubernetes/quarterly-validation in kustomization order, adapted to the sandbox cluster."""
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    docs: list[dict[str, Any]] = [reports_volume()]
    for name in kustomization["resources"]:
        for doc in yaml.safe_load_all((MANIFESTS / name).read_text()):
            if not doc:
                continue
            doc["metadata"].setdefault("namespace", kustomization["namespace"])
            if doc["kind"] == "ConfigMap":
                doc["data"]["hosts.yml"] = yaml.safe_dump(sandbox_inventory(), sort_keys=False)
            elif doc["kind"] == "PersistentVolumeClaim":
                doc["spec"] |= {"storageClassName": "", "volumeName": REPORTS_VOLUME}
            elif doc["kind"] == "CronJob":
                pod = doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
                # the node's network, and its resolver: the sandbox cluster has no DNS of its own
                pod |= {"hostNetwork": True, "dnsPolicy": "Default"}
                api_port = cluster.PORTS["kube-apiserver"]
                for container in pod["containers"]:
                    container.setdefault("env", []).extend([
                        {"name": "KUBERNETES_SERVICE_HOST", "value": "127.0.0.1"},
                        {"name": "KUBERNETES_SERVICE_PORT", "value": str(api_port)}])
            docs.append(doc)
    return docs


def install(api: client.ApiClient) -> None:
    """The EE image on the node and the CronJob with its inventory and claim applied."""
    bin_dir = cluster.binaries(build=False)
    platform.import_images(bin_dir, (platform.PLATFORM_IMAGE, EE_IMAGE))
    REPORTS_DIR.mkdir(parents=True, exist_ok=True)
    # the EE runs as uid 1000, group 0: it writes the reviews here
    os.chown(REPORTS_DIR, EE_UID, 0)
    REPORTS_DIR.chmod(0o770)
    say(f"applying {MANIFESTS.relative_to(REPO)} (sandbox addresses)")
    platform.apply(api, manifests())


def run_once(api: client.ApiClient, timeout: float = 900) -> tuple[str, str, str]:
    """A Job from the CronJob's template, as `kubectl create job --from=cronjob/...` makes it, waited for.
    Returns (job name, 'succeeded' or 'failed' or 'timed out', the pod's log)."""
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    cronjob = batch.read_namespaced_cron_job(CRONJOB, platform.NAMESPACE)
    name = f"{CRONJOB}-{datetime.now(timezone.utc):%Y%m%d%H%M%S}"[:63]
    template = cronjob.spec.job_template
    job = client.V1Job(
        metadata=client.V1ObjectMeta(
            name=name, namespace=platform.NAMESPACE, labels=(template.metadata.labels if template.metadata else None),
            annotations={"cronjob.kubernetes.io/instantiate": "manual"},
            owner_references=[client.V1OwnerReference(api_version="batch/v1", kind="CronJob", name=CRONJOB,
                                                      uid=cronjob.metadata.uid, controller=True)]),
        spec=template.spec)
    batch.create_namespaced_job(platform.NAMESPACE, job)
    say(f"job {name} started")
    started, state, last = time.monotonic(), "timed out", ""
    while time.monotonic() - started < timeout:
        status = batch.read_namespaced_job_status(name, platform.NAMESPACE).status
        if status.succeeded:
            state = "succeeded"
            break
        if status.failed:
            state = "failed"
            break
        pods = core.list_namespaced_pod(platform.NAMESPACE, label_selector=f"job-name={name}").items
        phase = platform.pod_state(pods[0]) if pods else "no pod yet"
        if phase != last:
            say(f"  {time.monotonic() - started:4.0f}s  pod {phase}")
            last = phase
        time.sleep(3)
    pods = core.list_namespaced_pod(platform.NAMESPACE, label_selector=f"job-name={name}").items
    log = ""
    if pods:
        try:
            # unparsed: the client would hand back the repr of the bytes
            log = core.read_namespaced_pod_log(pods[0].metadata.name, platform.NAMESPACE,
                                               _preload_content=False).data.decode(errors="replace")
        except client.ApiException as exc:
            log = f"(no log: {exc.reason})"
    say(f"job {name} {state} after {time.monotonic() - started:.0f}s")
    return name, state, log


def review_path() -> Path:
    """The review the Job wrote, as the node holds it."""
    return REPORTS_DIR / "quarterly_validation" / "latest.json"
