"""deploy/kubernetes/quarterly-validation: valid against the Kubernetes schemas
(offline, strict), as shipped and as the sandbox cluster applies them, and
consistent with the platform's own manifests: the account, the Secrets and
the files the inventory reads. The CronJob itself runs in
tests/kubernetes/test_kube_quarterly_job.py."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from sandbox.kube import quarterly

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy" / "kubernetes" / "quarterly-validation"
KUBERNETES_VERSION = "1.30"


def shipped() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    assert set(kustomization["resources"]) == {p.name for p in DEPLOY.glob("*.yaml")} - {"kustomization.yaml"}
    return [doc for name in kustomization["resources"] for doc in yaml.safe_load_all((DEPLOY / name).read_text())
            if doc]


def sandbox_docs(kind: str) -> list[dict[str, Any]]:
    return [doc for path in (REPO / "sandbox" / "k8s").glob("*.yaml") for doc in yaml.safe_load_all(path.read_text())
            if doc and doc.get("kind") == kind]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    return next(doc for doc in docs if doc["kind"] == kind)


@pytest.mark.parametrize("adapted", [False, True], ids=["as shipped", "on the sandbox cluster"])
def test_every_document_is_schema_valid(adapted: bool) -> None:
    for doc in quarterly.manifests() if adapted else shipped():
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_it_runs_quarterly_read_only_with_the_runbooks_account() -> None:
    cronjob = one(shipped(), "CronJob")
    assert cronjob["spec"]["schedule"] == "0 6 1 1,4,7,10 *"
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "runbooks" and pod["automountServiceAccountToken"] is True
    assert {sa["metadata"]["name"] for sa in sandbox_docs("ServiceAccount")} == {"runbooks"}
    command = pod["containers"][0]["command"]
    assert command[:2] == ["ansible-playbook", "aiagents.runbooks.quarterly_validation"]
    assert "--tags" not in command  # never sandbox mode: that one breaks the platform


def test_the_inventory_reads_only_secret_files_the_cronjob_mounts() -> None:
    docs = shipped()
    pod = one(docs, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    secrets = {doc["metadata"]["name"]: set(doc["stringData"]) for doc in sandbox_docs("Secret")}
    mounted = set()
    for mount in pod["containers"][0]["volumeMounts"]:
        secret = volumes[mount["name"]].get("secret")
        if not secret:
            continue
        keys = [item["key"] for item in secret.get("items", [])] or sorted(secrets[secret["secretName"]])
        assert set(keys) <= secrets[secret["secretName"]], secret
        mounted |= {f"{mount['mountPath']}/{key}" for key in keys}
    for inventory in (yaml.safe_load(one(docs, "ConfigMap")["data"]["hosts.yml"]),
                      yaml.safe_load(one(quarterly.manifests(), "ConfigMap")["data"]["hosts.yml"])):
        variables = inventory["all"]["vars"]
        read = {variables["runbooks_postgres"]["admin_password_file"]}
        for api in variables["runbooks_external_apis"]:
            read |= {api["bearer_token_file"]} if "bearer_token_file" in api else set()
            read |= {f"{api['sdp']['secret_dir']}/api_key"} if "sdp" in api else set()
        assert read <= mounted, read - mounted
        assert "platform_kubernetes_kubeconfig" not in variables  # the pod's own token
