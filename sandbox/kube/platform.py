"""The sandbox platform on the sandbox cluster: images into the node's
containerd, the manifests of sandbox/k8s applied with the Kubernetes Python
client (server-side apply), every pod Ready, and the runbooks' least-privilege
kubeconfig.
"""
from __future__ import annotations

import base64
import json
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException
from kubernetes.dynamic import DynamicClient

from . import cluster

try:  # sandbox/volumes.py: on the path when sandbox/bin/sandbox runs this, a sibling when imported as sandbox.kube
    import volumes
except ImportError:
    from .. import volumes

SANDBOX = cluster.SANDBOX
MANIFESTS = SANDBOX / "k8s"
SECRETS = SANDBOX / "secrets"
NAMESPACE = cluster.NAMESPACE
FIELD_MANAGER = "aiagents-sandbox"
PLATFORM_IMAGE = "aiagents-sandbox/platform:1"
PAUSE_IMAGE = "aiagents-sandbox/pause:1"
VOLUMES = cluster.STATE / "volumes"
RUNBOOKS_ACCOUNT = "runbooks"
# A token for the runbooks' kubeconfig, re-issued by every `up`.
RUNBOOKS_TOKEN_SECONDS = 7 * 24 * 3600
IMAGES_STAMP = cluster.STATE / "images.json"


def say(message: str) -> None:
    cluster.say(message)


def api_client(kubeconfig: Path = cluster.ADMIN_KUBECONFIG) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(kubeconfig))


# -------------------------------------------------------------------- images

def _docker_id(image: str) -> str:
    result = subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}", image], capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else ""


def ensure_pause_image(bin_dir: Path) -> None:
    """The pod sandbox image: our own pause binary alone in an image."""
    if _docker_id(PAUSE_IMAGE):
        return
    pause = (bin_dir / "pause").resolve()
    tar = subprocess.run(["tar", "-C", str(pause.parent), "-c", "--owner=0", "--group=0", pause.name],
                         capture_output=True, check=True)
    result = subprocess.run(["docker", "import", "--change", f'ENTRYPOINT ["/{pause.name}"]', "-", PAUSE_IMAGE],
                            input=tar.stdout, capture_output=True)
    if result.returncode != 0:
        raise cluster.ClusterError(f"building {PAUSE_IMAGE} failed: {result.stderr.decode()[-400:]}")


def import_images(bin_dir: Path, images: tuple[str, ...] = (PLATFORM_IMAGE,)) -> None:
    """Docker's images (and the pause image) into the node's containerd
    (namespace k8s.io), again only when Docker's differ from those imported last."""
    ensure_pause_image(bin_dir)
    wanted = {image: _docker_id(image) for image in (*images, PAUSE_IMAGE)}
    if not all(wanted.values()):
        raise cluster.ClusterError(f"images missing from Docker: {[i for i, v in wanted.items() if not v]}")
    imported = json.loads(IMAGES_STAMP.read_text()) if IMAGES_STAMP.exists() else {}
    listed = set(cluster.ctr("images", "ls", "-q").stdout.split())
    stale = [image for image, ident in wanted.items()
             if imported.get(image) != ident or f"docker.io/{image}" not in listed]
    if not stale:
        return
    started = time.monotonic()
    say(f"importing {', '.join(stale)} into the node's containerd")
    save = subprocess.Popen(["docker", "save", *stale], stdout=subprocess.PIPE)
    result = subprocess.run([str(bin_dir / "ctr"), "--address", str(cluster.CONTAINERD_SOCK), "--namespace", "k8s.io",
                             "images", "import", "--no-unpack", "-"], stdin=save.stdout, capture_output=True, text=True)
    save.wait()
    if save.returncode or result.returncode:
        raise cluster.ClusterError(f"importing images failed: {result.stderr.strip()[-400:]}")
    IMAGES_STAMP.write_text(json.dumps(imported | wanted))
    say(f"images imported ({time.monotonic() - started:.0f}s)")


# ----------------------------------------------------------------- manifests

def _secret_values(name: str) -> dict[str, str]:
    directory = SECRETS / name
    if not directory.is_dir():
        raise cluster.ClusterError(f"secret {name} missing under {SECRETS} (sandbox up creates it)")
    return {path.name: path.read_text().strip() for path in sorted(directory.iterdir()) if path.is_file()}


IMAGE_ANNOTATION = "sandbox.aiagents/image-id"


def manifests() -> list[dict[str, Any]]:
    """The documents of sandbox/k8s in kustomization order; Secrets carry the
    sandbox's generated credentials instead of their placeholders.

    The platform image keeps its tag when it is rebuilt, so a pod template
    naming it would not change and its pods would go on running the old
    code (a cluster brought back up from its state restarts them as they
    were). Every template that runs the image is annotated with the image's
    id: a new image is a new template, which the apply rolls out."""
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    image_id = _docker_id(PLATFORM_IMAGE)
    docs = []
    for name in kustomization["resources"]:
        for doc in yaml.safe_load_all((MANIFESTS / name).read_text()):
            if not doc:
                continue
            if doc["kind"] == "Secret":
                secret = doc["metadata"]["name"]
                source = "postgres" if secret == "postgres-credentials" else secret
                values = _secret_values(source)
                doc["stringData"] = {key: values[key] for key in doc["stringData"]}
            template = (doc.get("spec") or {}).get("template") or {}
            containers = (template.get("spec") or {}).get("containers") or []
            if image_id and any(container.get("image") == PLATFORM_IMAGE for container in containers):
                template.setdefault("metadata", {}).setdefault("annotations", {})[IMAGE_ANNOTATION] = image_id
            docs.append(doc)
    return docs


def data_volumes() -> list[dict[str, Any]]:
    """PostgreSQL's and Redis's claims (data-postgres-0, data-redis-0) bind
    to directories of the node under the sandbox's state, each a small
    filesystem of its own (sandbox/volumes.py, mounted here): they outlive
    the pods, as volumes do, and they can fill up."""
    return [{
        "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": f"aiagents-sandbox-{name}"},
        "spec": {"capacity": {"storage": volumes.SIZES[name].replace("g", "Gi").replace("m", "Mi")},
                 "accessModes": ["ReadWriteOnce"], "persistentVolumeReclaimPolicy": "Retain",
                 "hostPath": {"path": str(volumes.mount(VOLUMES, name)), "type": "Directory"},
                 "claimRef": {"namespace": NAMESPACE, "name": f"data-{name}-0"}},
    } for name in volumes.SIZES]


def apply(api: client.ApiClient, docs: list[dict[str, Any]]) -> None:
    dynamic = DynamicClient(api)
    for doc in docs:
        resource = dynamic.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
        namespace = doc["metadata"].get("namespace") if resource.namespaced else None
        try:
            resource.server_side_apply(body=doc, name=doc["metadata"]["name"], namespace=namespace,
                                       field_manager=FIELD_MANAGER, force_conflicts=True)
        except ApiException as exc:
            # A StatefulSet's claim templates cannot change in place (a cluster brought back up from the state
            # of an older sandbox): it is replaced; its claims, and so its data, stay.
            if doc["kind"] != "StatefulSet" or exc.status != 422:
                raise
            say(f"replacing statefulset {doc['metadata']['name']}: its claim templates changed")
            resource.delete(name=doc["metadata"]["name"], namespace=namespace)
            resource.server_side_apply(body=doc, name=doc["metadata"]["name"], namespace=namespace,
                                       field_manager=FIELD_MANAGER, force_conflicts=True)


def _mounted_secrets(deployment: client.V1Deployment) -> set[str]:
    """The Secrets a Deployment's pods mount, as volumes or projected sources."""
    names = set()
    for volume in deployment.spec.template.spec.volumes or []:
        if volume.secret:
            names.add(volume.secret.secret_name)
        for source in (volume.projected.sources or []) if volume.projected else []:
            if source.secret:
                names.add(source.secret.name)
    return names


# ---------------------------------------------------------------- readiness

def _pod_ready(pod: client.V1Pod) -> bool:
    return pod.status.phase == "Running" and any(
        c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))


def pod_state(pod: client.V1Pod) -> str:
    for status in pod.status.container_statuses or []:
        if status.state.waiting:
            return status.state.waiting.reason or "waiting"
        if status.state.terminated:
            return status.state.terminated.reason or "terminated"
    return "Ready" if _pod_ready(pod) else pod.status.phase or "Pending"


def workloads_ready(api: client.ApiClient) -> tuple[bool, list[str]]:
    """Every Deployment and StatefulSet has its replicas ready, updated, and no
    pod besides them (a Job's pods, such as the quarterly validation's, run to
    completion and are not the platform's); returns (ready, what is not)."""
    apps = client.AppsV1Api(api)
    waiting = []
    for kind, items in (("deployment", apps.list_namespaced_deployment(NAMESPACE).items),
                        ("statefulset", apps.list_namespaced_stateful_set(NAMESPACE).items)):
        for item in items:
            want = item.spec.replicas or 0
            ready = item.status.ready_replicas or 0
            updated = item.status.updated_replicas or 0
            total = item.status.replicas or 0
            if ready != want or updated != want or total != want:
                waiting.append(f"{kind}/{item.metadata.name} {ready}/{want}")
    pods = [p for p in client.CoreV1Api(api).list_namespaced_pod(NAMESPACE).items
            if not any(owner.kind == "Job" for owner in p.metadata.owner_references or [])]
    waiting += [f"pod {p.metadata.name} {pod_state(p)}" for p in pods if not _pod_ready(p)]
    return (not waiting and bool(pods)), waiting


def wait_ready(api: client.ApiClient, timeout: float = 240) -> None:
    started = time.monotonic()
    last = 0.0
    while True:
        ready, waiting = workloads_ready(api)
        if ready:
            return
        elapsed = time.monotonic() - started
        if elapsed > timeout:
            raise cluster.ClusterError(f"not every pod Ready within {timeout:.0f}s: {'; '.join(waiting)}\n"
                                       + recent_events(api))
        if elapsed - last >= 15:
            say(f"waiting for pods ({elapsed:.0f}s): {'; '.join(waiting[:6])}")
            last = elapsed
        time.sleep(1)


def recent_events(api: client.ApiClient, count: int = 12) -> str:
    events = client.CoreV1Api(api).list_namespaced_event(NAMESPACE).items
    events.sort(key=lambda e: e.last_timestamp or e.event_time or e.metadata.creation_timestamp)
    return "\n".join(f"  {e.involved_object.kind}/{e.involved_object.name}: {e.reason}: {e.message}"
                     for e in events[-count:])


# ------------------------------------------------------------------ runbooks

def write_runbooks_kubeconfig(api: client.ApiClient) -> Path:
    """The runbooks' kubeconfig: the ServiceAccount `runbooks` of the platform's
    namespace (its Role is in sandbox/k8s/runbooks-rbac.yaml), with a bound
    token from the TokenRequest API."""
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=RUNBOOKS_TOKEN_SECONDS))
    token = client.CoreV1Api(api).create_namespaced_service_account_token(
        RUNBOOKS_ACCOUNT, NAMESPACE, request).status.token
    cluster.write_kubeconfig(cluster.RUNBOOKS_KUBECONFIG, f"{NAMESPACE}:{RUNBOOKS_ACCOUNT}", {"token": token},
                             namespace=NAMESPACE)
    return cluster.RUNBOOKS_KUBECONFIG


# --------------------------------------------------------------------- up/down

def up() -> None:
    started = time.monotonic()
    cluster.up()
    bin_dir = cluster.binaries(build=False)
    import_images(bin_dir)
    api = api_client()
    say("applying sandbox/k8s")
    apply(api, [*data_volumes(), *manifests()])
    write_runbooks_kubeconfig(api)
    wait_ready(api)
    say(f"kubernetes platform up in {time.monotonic() - started:.0f}s "
        f"(admin kubeconfig {cluster.ADMIN_KUBECONFIG}, runbooks kubeconfig {cluster.RUNBOOKS_KUBECONFIG})")


def stop_pods(timeout: float = 60) -> None:
    """Every pod of the platform stopped through the API, so the kubelet
    unmounts its volumes; the controllers are stopped first so none comes back."""
    if not cluster.running():
        return
    cluster.stop_component("kube-controller-manager")
    api = api_client()
    core = client.CoreV1Api(api)
    try:
        core.delete_collection_namespaced_pod(NAMESPACE, grace_period_seconds=5)
    except ApiException as exc:
        if exc.status != 404:
            raise
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and core.list_namespaced_pod(NAMESPACE).items:
        time.sleep(0.5)


def down() -> list[str]:
    try:
        stop_pods()
    except Exception as exc:  # a half-started cluster still goes down
        say(f"stopping pods through the API failed ({exc.__class__.__name__}); stopping them at the node")
    return cluster.down()


# ------------------------------------------------------- fault operations

# The sandbox's services and the workload each one is on the cluster.
WORKLOADS = {
    "redis": ("statefulset", "redis"), "postgres": ("statefulset", "postgres"),
    "prometheus": ("statefulset", "prometheus"), "alertmanager": ("deployment", "alertmanager"),
    "api": ("deployment", "api"),
    "worker": ("deployment", "celery-worker"), "sdp": ("deployment", "sdp"),
    "openai": ("deployment", "openai"), "jaeger": ("deployment", "jaeger"),
}
FAULT_LABEL = "aiagents.sandbox/fault"


class Completed:
    """What a command run in a pod returned (subprocess.CompletedProcess's shape)."""

    def __init__(self, args: list[str], returncode: int, stdout: str, stderr: str) -> None:
        self.args, self.returncode, self.stdout, self.stderr = args, returncode, stdout, stderr


class KubePlatform:
    """The operations the faults use (sandbox/bin/sandbox: faults), on the
    sandbox cluster through the Kubernetes API."""

    name = "kubernetes"

    def __init__(self) -> None:
        self.state = cluster.STATE
        config_doc = next(doc for doc in yaml.safe_load_all((MANIFESTS / "config.yaml").read_text())
                          if doc and doc["kind"] == "ConfigMap")
        self.env: dict[str, str] = {key: str(value) for key, value in config_doc["data"].items()}
        self._api: client.ApiClient | None = None
        self._manifests: list[dict[str, Any]] = []

    @staticmethod
    def volume(service: str) -> Path:
        """Where the service's data volume is on the node (its PersistentVolume's hostPath)."""
        return VOLUMES / service

    @property
    def pgdata_in_volume(self) -> str:
        """PGDATA within PostgreSQL's volume (sandbox/k8s/postgres.yaml: a directory under its mount)."""
        env = self._manifest("statefulset", "postgres")["spec"]["template"]["spec"]["containers"][0]["env"]
        pgdata = next(e["value"] for e in env if e["name"] == "PGDATA")
        return str(Path(pgdata).relative_to("/var/lib/postgresql/data"))

    # -- plumbing
    @property
    def api(self) -> client.ApiClient:
        if self._api is None:
            self._api = api_client()
        return self._api

    def running(self) -> bool:
        if not cluster.running():
            return False
        return bool(client.CoreV1Api(self.api).list_namespaced_pod(NAMESPACE).items)

    def _manifest(self, kind: str, name: str) -> dict[str, Any]:
        if not self._manifests:
            self._manifests = manifests()
        return next(doc for doc in self._manifests if doc["kind"].lower() == kind and doc["metadata"]["name"] == name)

    def ready_pod(self, label: str, running: bool = False) -> str:
        """A Ready pod with `label` (or, with `running`, a Running one when none is Ready)."""
        pods = [p for p in client.CoreV1Api(self.api).list_namespaced_pod(NAMESPACE, label_selector=label).items
                if not p.metadata.deletion_timestamp]
        ready = sorted(p.metadata.name for p in pods if _pod_ready(p)) or \
            sorted(p.metadata.name for p in pods if running and p.status.phase == "Running")
        if not ready:
            raise SystemExit(f"sandbox: no Ready pod with {label}; run `sandbox up --platform kubernetes`")
        return ready[0]

    def exec(self, pod: str, argv: list[str], check: bool = True, timeout: float = 120) -> Completed:
        """A command in a pod's container, through the API server's exec."""
        from kubernetes.stream import stream  # pylint: disable=import-outside-toplevel

        response = stream(client.CoreV1Api(self.api).connect_get_namespaced_pod_exec, pod, NAMESPACE,
                          command=argv, stdin=False, stdout=True, stderr=True, tty=False, _preload_content=False)
        out, err = [], []
        deadline = time.monotonic() + timeout
        while response.is_open() and time.monotonic() < deadline:
            response.update(timeout=1)
            if response.peek_stdout():
                out.append(response.read_stdout())
            if response.peek_stderr():
                err.append(response.read_stderr())
        timed_out = response.is_open()
        response.close()
        result = Completed(argv, 124 if timed_out else (response.returncode or 0), "".join(out), "".join(err))
        if check and result.returncode != 0:
            raise SystemExit(f"sandbox: {' '.join(argv[:4])} ... in {pod} failed ({result.returncode}) "
                             f"{(result.stderr or result.stdout).strip()[-2000:]}")
        return result

    # -- the operations
    def ops(self, *args: str, check: bool = True) -> str:
        # A running api pod will do: with the broker refusing PING (MISCONF) none is Ready, and that is
        # exactly when the operations that heal it must run.
        return self.exec(self.ready_pod("app=api", running=True), ["python", "-m", "aiagents_sandbox.ops", *args],
                         check).stdout

    def _psql(self, *args: str, check: bool = True) -> Completed:
        return self.exec("postgres-0", ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                                        "-U", self.env["POSTGRES_ADMIN_USER"], "-d", self.env["POSTGRES_DB"], *args],
                         check)

    def admin_sql(self, sql: str, check: bool = True, database: str = "") -> Completed:
        return self._psql(*(["-d", database] if database else []), "-c", sql, check=check)

    def reapply_rls(self) -> None:
        # The image carries sandbox/postgres/rls.sql (rebuilt by every `up`).
        self._psql("-v", f"app_user={self.env['POSTGRES_APP_USER']}", "-f", "/opt/aiagents/postgres/rls.sql")

    def _scale(self, service: str, replicas: int) -> None:
        kind, name = WORKLOADS[service]
        apps = client.AppsV1Api(self.api)
        patch = {"spec": {"replicas": replicas}}
        if kind == "deployment":
            apps.patch_namespaced_deployment_scale(name, NAMESPACE, patch)
        else:
            apps.patch_namespaced_stateful_set_scale(name, NAMESPACE, patch)

    def _replicas(self, service: str) -> int:
        kind, name = WORKLOADS[service]
        apps = client.AppsV1Api(self.api)
        read = apps.read_namespaced_deployment if kind == "deployment" else apps.read_namespaced_stateful_set
        return read(name, NAMESPACE).spec.replicas or 0

    def _rolled_out(self, name: str) -> bool:
        """A Deployment's latest spec rolled out, as `kubectl rollout status` judges it: seen by its
        controller, every replica updated and available, no old one left. Right after a patch its
        pods alone still look Ready: the old ones."""
        deployment = client.AppsV1Api(self.api).read_namespaced_deployment(name, NAMESPACE)
        status, want = deployment.status, deployment.spec.replicas or 0
        return ((status.observed_generation or 0) >= (deployment.metadata.generation or 0)
                and (status.updated_replicas or 0) >= want and (status.replicas or 0) <= (status.updated_replicas or 0)
                and (status.available_replicas or 0) >= (status.updated_replicas or 0))

    def _wait(self, service: str, gone: bool = False, timeout: float = 180) -> None:
        """Until the service's pods are all gone, or its rollout is done and all are Ready at its replica count."""
        kind, name = WORKLOADS[service]
        label = f"app={name}"
        core = client.CoreV1Api(self.api)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not gone and kind == "deployment" and not self._rolled_out(name):
                time.sleep(0.5)
                continue
            pods = core.list_namespaced_pod(NAMESPACE, label_selector=label).items
            if gone and not pods:
                return
            if not gone:
                want = self._replicas(service)
                live = [p for p in pods if not p.metadata.deletion_timestamp]
                if len(pods) == want and all(_pod_ready(p) for p in live) and len(live) == want:
                    return
            time.sleep(0.5)
        raise SystemExit(f"sandbox: {kind}/{name} not {'stopped' if gone else 'Ready'} within {timeout:.0f}s")

    def stop_service(self, service: str) -> None:
        self._scale(service, 0)
        self._wait(service, gone=True)

    def ensure_service(self, service: str) -> None:
        if self._replicas(service) == 0:
            kind, name = WORKLOADS[service]
            self._scale(service, self._manifest(kind, name)["spec"]["replicas"])
        self._wait(service)

    def ensure_workers(self) -> None:
        """The sandbox's own worker count (a runbook may have scaled it up), every pod Ready and none
        left terminating, as the Docker sandbox's heal does."""
        want = self._manifest("deployment", "celery-worker")["spec"]["replicas"]
        if self._replicas("worker") != want:
            self._scale("worker", want)
        self._wait("worker")

    def _worker_template(self) -> dict[str, Any]:
        return self._manifest("deployment", "celery-worker")["spec"]["template"]

    def set_worker_override(self, values: dict[str, str] | None, settle: bool = False) -> None:
        """The workers' container env: the manifest's plus `values`; None puts
        back the manifest's env and resources (a runbook may have raised the
        memory limit). The Deployment rolls its pods either way; with `settle`
        (workers that start fine on the values) or when healing, until the
        rollout is done, so every job after it meets the new pods."""
        container = self._worker_template()["spec"]["containers"][0]
        env = [e for e in container["env"] if e["name"] not in (values or {})]
        env += [{"name": key, "value": value} for key, value in (values or {}).items()]
        deployment = client.AppsV1Api(self.api).read_namespaced_deployment("celery-worker", NAMESPACE)
        current = deployment.spec.template.spec.containers[0]
        current_env = [self.api.sanitize_for_serialization(e) for e in current.env or []]
        current_resources = self.api.sanitize_for_serialization(current.resources)
        wanted_resources = container["resources"] if values is None else current_resources
        if current_env == env and current_resources == wanted_resources:
            if values is None:
                self._wait("worker")
            return
        patch = [{"op": "replace", "path": "/spec/template/spec/containers/0/env", "value": env},
                 {"op": "replace", "path": "/spec/template/spec/containers/0/resources", "value": wanted_resources}]
        client.AppsV1Api(self.api).patch_namespaced_deployment("celery-worker", NAMESPACE, patch)
        # A crash-looping worker never turns Ready: wait only when healing or told to.
        if values is None or settle:
            self._wait("worker")

    def reset_workers(self) -> None:
        self.set_worker_override(None)

    def reset_secrets(self) -> None:
        """The sandbox's own credentials (sandbox/secrets) back in its Secrets: a runbook may have rotated
        one, and the sandbox's files - what its inventory probes with - still hold the sandbox's key. Every
        Deployment that mounts a secret put back restarts onto it, waited for: a mounted Secret reaches a
        running pod only at the kubelet's next sync."""
        core, apps = client.CoreV1Api(self.api), client.AppsV1Api(self.api)
        restored = []
        for doc in (doc for doc in manifests() if doc["kind"] == "Secret"):
            name, wanted = doc["metadata"]["name"], doc["stringData"]
            current = core.read_namespaced_secret(name, NAMESPACE).data or {}
            if {key: base64.b64decode(current.get(key) or "").decode() for key in wanted} != wanted:
                core.patch_namespaced_secret(name, NAMESPACE, {"stringData": wanted})
                restored.append(name)
        if restored:
            consumers = {deployment.metadata.name for deployment in apps.list_namespaced_deployment(NAMESPACE).items
                         if set(restored) & _mounted_secrets(deployment)}
            self._rolling_restart([service for service, (kind, name) in WORKLOADS.items()
                                   if kind == "deployment" and name in consumers])

    def clear_pauses(self) -> None:
        """The record of what runbooks paused on purpose: the runbooks' ConfigMap (heal resumes all of it)."""
        try:
            client.CoreV1Api(self.api).delete_namespaced_config_map("runbooks-pauses", NAMESPACE)
        except ApiException as exc:
            if exc.status != 404:
                raise

    def _rolling_restart(self, services: list[str]) -> None:
        """New pods for these services' Deployments (the restartedAt annotation), every rollout waited for."""
        stamp = datetime.now(timezone.utc).isoformat()
        patch = {"spec": {"template": {"metadata": {"annotations": {"aiagents.sandbox/restartedAt": stamp}}}}}
        for service in services:
            client.AppsV1Api(self.api).patch_namespaced_deployment(WORKLOADS[service][1], NAMESPACE, patch)
        for service in services:
            self._wait(service)

    def restart_workers(self) -> None:
        """New worker pods (a hung one ends): a rolling restart, waited for."""
        self._rolling_restart(["worker"])

    def first_worker(self) -> tuple[str, str]:
        pod = self.ready_pod("app=celery-worker")
        return pod, f"worker@{pod}"

    def start_holder(self, name: str, *args: str) -> None:
        """A long-running fault lives in a pod of its own, labelled, so heal
        and down can find and end it."""
        pod_name = f"aiagents-fault-{name}"
        core = client.CoreV1Api(self.api)
        self.remove_holders(name)
        core.create_namespaced_pod(NAMESPACE, {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod_name, "labels": {FAULT_LABEL: name}},
            "spec": {
                "hostNetwork": True, "dnsPolicy": "Default", "enableServiceLinks": False,
                "restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                "containers": [{
                    "name": "holder", "image": PLATFORM_IMAGE, "imagePullPolicy": "Never",
                    "command": ["python", "-m", "aiagents_sandbox.ops", "hold", *args],
                    "envFrom": [{"configMapRef": {"name": "platform-config"}}],
                    "env": [{"name": "SANDBOX_ROLE", "value": f"fault-{name}"}],
                    "volumeMounts": [{"name": "credentials", "mountPath": "/run/secrets/aiagents/postgres",
                                      "readOnly": True}]}],
                "volumes": [{"name": "credentials",
                             "secret": {"secretName": "postgres-credentials", "defaultMode": 0o400}}]}})


    def holder_logs(self, name: str) -> str:
        try:
            # Unparsed: the client would hand back the repr of the bytes.
            return client.CoreV1Api(self.api).read_namespaced_pod_log(
                f"aiagents-fault-{name}", NAMESPACE, _preload_content=False).data.decode()
        except ApiException:
            return ""

    def remove_holders(self, name: str = "") -> None:
        core = client.CoreV1Api(self.api)
        selector = f"{FAULT_LABEL}={name}" if name else FAULT_LABEL
        core.delete_collection_namespaced_pod(NAMESPACE, label_selector=selector, grace_period_seconds=0)
        deadline = time.monotonic() + 60
        while core.list_namespaced_pod(NAMESPACE, label_selector=selector).items and time.monotonic() < deadline:
            time.sleep(0.3)

    def write_data_file(self, relative: str, offset: int, data: bytes) -> None:
        """Bytes written into a file of the stopped database's data directory,
        on the node (the claim's volume is a directory there)."""
        host = self.volume("postgres") / self.pgdata_in_volume / relative
        self.stop_service("postgres")
        with open(host, "r+b") as handle:
            handle.seek(offset)
            handle.write(data)
        self.ensure_service("postgres")
