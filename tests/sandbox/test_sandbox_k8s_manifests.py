"""The Kubernetes manifests of the platform (sandbox/k8s): valid against the
Kubernetes schemas (offline, bundled by kubernetes-validate) and carrying the
production names the runbooks rely on."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

K8S = Path(__file__).resolve().parents[2] / "sandbox" / "k8s"
KUBERNETES_VERSION = "1.30"


def documents() -> list[tuple[str, dict[str, Any]]]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    docs = []
    for name in kustomization["resources"]:
        docs += [(name, doc) for doc in yaml.safe_load_all((K8S / name).read_text()) if doc]
    return docs


def find(kind: str, name: str) -> dict[str, Any]:
    return next(doc for _path, doc in documents() if doc["kind"] == kind and doc["metadata"]["name"] == name)


def test_every_manifest_file_is_in_the_kustomization() -> None:
    listed = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])
    assert listed == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}


@pytest.mark.parametrize(("source", "doc"), documents(),
                         ids=lambda value: value if isinstance(value, str) else value["metadata"]["name"])
def test_manifest_is_schema_valid(source: str, doc: dict[str, Any]) -> None:
    # strict: unknown fields are errors too (a typo must not pass silently)
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_schema_validation_catches_errors() -> None:
    broken = find("Deployment", "celery-worker")
    broken = {**broken, "spec": {**broken["spec"], "replicas": "two"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_production_names_and_resources() -> None:
    worker = find("Deployment", "celery-worker")
    assert worker["spec"]["template"]["metadata"]["labels"]["app"] == "celery-worker"
    container = worker["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"] == {"limits": {"memory": "2Gi", "cpu": "1000m"},
                                      "requests": {"memory": "512Mi", "cpu": "250m"}}
    assert container["livenessProbe"]["initialDelaySeconds"] and container["readinessProbe"]["periodSeconds"]
    for name in ("redis", "postgres", "prometheus"):
        assert find("StatefulSet", name)["spec"]["replicas"] == 1  # pods <name>-0
    assert find("StatefulSet", "postgres")["spec"]["template"]["metadata"]["labels"]["app"] == "postgres"
    assert find("Deployment", "api")["spec"]["template"]["metadata"]["labels"]["app"] == "api"
    for secret in ("sdp-credentials", "openai-credentials"):
        assert set(find("Secret", secret)["stringData"]) == {"api_key"}
