"""The sandbox's single-node Kubernetes cluster, on loopback, from bare binaries.

etcd, kube-apiserver (TLS, client certificates, RBAC), kube-controller-manager,
kube-scheduler, and a kubelet on a containerd of its own (own config, socket,
root and state, cgroupfs driver), so the Docker engine beside it is left alone.
The binaries come from `sandbox/kube/build.sh` (built once, cached outside the
checkout); certificates, kubeconfigs, logs and data live under
`sandbox/state/kube/` (keys 0600); sockets under /run/aiagents-sandbox-kube.

The start order and flags follow Kubernetes' own hack/local-up-cluster.sh.
Stdlib only (plus the openssl CLI), like the rest of the sandbox CLI.
"""
from __future__ import annotations

import base64
import json
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

SANDBOX = Path(__file__).resolve().parent.parent
STATE = SANDBOX / "state" / "kube"
PKI = STATE / "pki"
LOGS = STATE / "logs"
PIDS = STATE / "pids"
RUN = Path("/run/aiagents-sandbox-kube")
CONTAINERD_SOCK = RUN / "containerd.sock"
ADMIN_KUBECONFIG = STATE / "admin.kubeconfig"
RUNBOOKS_KUBECONFIG = STATE / "runbooks.kubeconfig"
# The node is named for the address the API server reaches its kubelet on:
# everything stays on loopback, and the kubelet refuses a loopback --node-ip.
NODE_NAME = "127.0.0.1"
NAMESPACE = "ai-agents"
PORTS = {"etcd": 12379, "etcd-peer": 12380, "kube-apiserver": 16443, "kubelet": 10250,
         "kubelet-healthz": 10248, "kube-controller-manager": 10257, "kube-scheduler": 10259}
API_URL = f"https://127.0.0.1:{PORTS['kube-apiserver']}"
SERVICE_CIDR = "10.0.0.0/24"
# Started in this order, stopped in the reverse one.
COMPONENTS = ("etcd", "containerd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet")
CGROUP_ROOT = Path("/sys/fs/cgroup")
PAUSE_IMAGE = "docker.io/aiagents-sandbox/pause:1"


def say(message: str) -> None:
    print(f"sandbox: {message}", flush=True)


class ClusterError(SystemExit):
    def __init__(self, message: str) -> None:
        super().__init__(f"sandbox: {message}")


# ------------------------------------------------------------------ binaries

_BIN_DIR: list[Path] = []


def binaries(build: bool = True) -> Path:
    """The directory of the built components; builds them when missing (its
    progress shown as it comes), unless build is false. Asked once per run."""
    if _BIN_DIR:
        return _BIN_DIR[0]
    script = SANDBOX / "kube" / "build.sh"
    if not build:
        result = subprocess.run([str(script), "--print"], capture_output=True, text=True)
        if result.returncode != 0:
            raise ClusterError("the Kubernetes components are not built; run sandbox/kube/build.sh")
        _BIN_DIR.append(Path(result.stdout.strip().splitlines()[-1]))
        return _BIN_DIR[0]
    last = ""
    with subprocess.Popen([str(script)], stdout=subprocess.PIPE, text=True) as process:
        for line in process.stdout:
            if last and "cached" not in last:
                print(last, end="", flush=True)
            last = line
    if process.returncode != 0:
        raise ClusterError("building the Kubernetes components failed (see above)")
    _BIN_DIR.append(Path(last.strip()))
    return _BIN_DIR[0]


# ----------------------------------------------------------- certificates

def _openssl(*args: str) -> None:
    result = subprocess.run(["openssl", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise ClusterError(f"openssl {args[0]} failed: {result.stderr.strip()[-400:]}")


def _new_key(path: Path) -> None:
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(path))
    path.chmod(0o600)


def _sign(name: str, subject: str, extensions: list[str]) -> None:
    """A key and a certificate for `name`, signed by the sandbox CA."""
    key, csr, crt, ext = (PKI / f"{name}.{suffix}" for suffix in ("key", "csr", "crt", "ext"))
    _new_key(key)
    _openssl("req", "-new", "-key", str(key), "-subj", subject, "-out", str(csr))
    ext.write_text("\n".join(["basicConstraints=critical,CA:FALSE",
                              "keyUsage=critical,digitalSignature,keyEncipherment", *extensions]) + "\n")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(PKI / "ca.crt"), "-CAkey", str(PKI / "ca.key"),
             "-CAcreateserial", "-days", "365", "-sha256", "-extfile", str(ext), "-out", str(crt))
    csr.unlink()
    ext.unlink()


CLIENTS = {
    # name: (common name, organisation)
    "admin": ("kubernetes-admin", "system:masters"),
    "kube-controller-manager": ("system:kube-controller-manager", ""),
    "kube-scheduler": ("system:kube-scheduler", ""),
    "kubelet": (f"system:node:{NODE_NAME}", "system:nodes"),
    "apiserver-kubelet-client": ("kube-apiserver-kubelet-client", "system:masters"),
}


def ensure_pki() -> None:
    """CA, serving and client certificates, and the service-account key pair,
    made once per cluster (down removes them)."""
    if (PKI / "ca.crt").exists() and (PKI / "sa.pub").exists():
        return
    old_umask = os.umask(0o077)
    try:
        PKI.mkdir(parents=True, exist_ok=True)
        _new_key(PKI / "ca.key")
        _openssl("req", "-x509", "-new", "-key", str(PKI / "ca.key"), "-subj", "/CN=aiagents-sandbox-ca",
                 "-days", "3650", "-sha256", "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", str(PKI / "ca.crt"))
        _sign("apiserver", "/CN=kube-apiserver", [
            "extendedKeyUsage=serverAuth",
            "subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,"
            "DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"])
        _sign("kubelet-serving", f"/CN={NODE_NAME}", ["extendedKeyUsage=serverAuth",
                                                      "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        for name, (common, org) in CLIENTS.items():
            _sign(name, (f"/O={org}" if org else "") + f"/CN={common}", ["extendedKeyUsage=clientAuth"])
        _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(PKI / "sa.key"))
        _openssl("pkey", "-in", str(PKI / "sa.key"), "-pubout", "-out", str(PKI / "sa.pub"))
    finally:
        os.umask(old_umask)
    for key in PKI.glob("*.key"):
        key.chmod(0o600)


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def write_kubeconfig(path: Path, user: str, credentials: dict[str, str], namespace: str = "default") -> None:
    """A self-contained kubeconfig (JSON is YAML), mode 0600."""
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "aiagents-sandbox", "preferences": {},
        "clusters": [{"name": "aiagents-sandbox",
                      "cluster": {"server": API_URL, "certificate-authority-data": _b64(PKI / "ca.crt")}}],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": "aiagents-sandbox",
                      "context": {"cluster": "aiagents-sandbox", "user": user, "namespace": namespace}}],
    }
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(config, handle, indent=1)


def client_kubeconfig(name: str) -> Path:
    path = STATE / f"{name}.kubeconfig"
    if not path.exists():
        write_kubeconfig(path, name, {"client-certificate-data": _b64(PKI / f"{name}.crt"),
                                      "client-key-data": _b64(PKI / f"{name}.key")})
    return path


# ------------------------------------------------------------- components

def containerd_config() -> Path:
    root = STATE / "containerd"
    cni = STATE / "cni"
    cni.mkdir(parents=True, exist_ok=True)
    # Every pod uses the host's network; the runtime still wants a network
    # configured before it calls the node ready, and loopback is all a pod
    # without host networking would get.
    (cni / "10-loopback.conflist").write_text(json.dumps(
        {"cniVersion": "1.0.0", "name": "aiagents-sandbox", "plugins": [{"type": "loopback"}]}, indent=1))
    path = STATE / "containerd.toml"
    path.write_text(f"""\
# containerd of the sandbox cluster: its own root, state and socket.
version = 3
root = "{root}"
state = "{RUN / 'containerd'}"
disabled_plugins = ["io.containerd.nri.v1.nri", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
                    "io.containerd.snapshotter.v1.blockfile", "io.containerd.snapshotter.v1.erofs",
                    "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{CONTAINERD_SOCK}"

[ttrpc]
  address = "{CONTAINERD_SOCK}.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "{PAUSE_IMAGE}"

[plugins."io.containerd.cri.v1.runtime"]
  # These machines withhold CAP_SYS_RESOURCE, so no process may lower its OOM
  # score (the pod sandbox asks for -998): keep every container at or above ours.
  restrict_oom_score_adj = true
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        SystemdCgroup = false
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "{cni}"

[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
""")
    return path


def kubelet_config() -> Path:
    path = STATE / "kubelet.yaml"
    config = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
        "address": "127.0.0.1", "port": PORTS["kubelet"], "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1", "healthzPort": PORTS["kubelet-healthz"],
        "tlsCertFile": str(PKI / "kubelet-serving.crt"), "tlsPrivateKeyFile": str(PKI / "kubelet-serving.key"),
        "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                           "x509": {"clientCAFile": str(PKI / "ca.crt")}},
        "authorization": {"mode": "Webhook"},
        "containerRuntimeEndpoint": f"unix://{CONTAINERD_SOCK}",
        # Docker's engine uses cgroupfs on these machines too; cgroup v1 is
        # still accepted by 1.34 when asked.
        "cgroupDriver": "cgroupfs", "failCgroupV1": False, "failSwapOn": False,
        "podLogsDir": str(STATE / "pod-logs"),
        "resolvConf": "/etc/resolv.conf", "maxPods": 40,
        # The images are imported, never pulled: nothing may garbage-collect
        # them, and a nearly full disk must not evict the platform.
        "imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99,
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "nodefs.inodesFree": "1%",
                         "imagefs.available": "1%"},
        "serializeImagePulls": False, "rotateCertificates": False,
        # Lowering an OOM score needs CAP_SYS_RESOURCE, which these machines withhold.
        "oomScoreAdj": 0,
        "nodeStatusUpdateFrequency": "5s",
    }
    path.write_text(json.dumps(config, indent=1))
    return path


def commands(bin_dir: Path) -> dict[str, list[str]]:
    pki = str(PKI)
    etcd = f"http://127.0.0.1:{PORTS['etcd']}"
    peer = f"http://127.0.0.1:{PORTS['etcd-peer']}"

    def kubeconfigs(name: str) -> list[str]:
        path = str(client_kubeconfig(name))
        return [f"--kubeconfig={path}", f"--authentication-kubeconfig={path}", f"--authorization-kubeconfig={path}"]

    return {
        # A sandbox's etcd: one member, loopback, no fsync (its data is thrown away at down).
        "etcd": [str(bin_dir / "etcd"), "--name=sandbox", f"--data-dir={STATE / 'etcd'}",
                 f"--listen-client-urls={etcd}", f"--advertise-client-urls={etcd}",
                 f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
                 f"--initial-cluster=sandbox={peer}", "--log-level=warn", "--unsafe-no-fsync"],
        "containerd": [str(bin_dir / "containerd"), f"--config={containerd_config()}"],
        "kube-apiserver": [
            str(bin_dir / "kube-apiserver"), f"--etcd-servers={etcd}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={PORTS['kube-apiserver']}",
            f"--tls-cert-file={pki}/apiserver.crt", f"--tls-private-key-file={pki}/apiserver.key",
            f"--client-ca-file={pki}/ca.crt", "--authorization-mode=Node,RBAC",
            f"--service-account-key-file={pki}/sa.pub", f"--service-account-signing-key-file={pki}/sa.key",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            f"--kubelet-client-certificate={pki}/apiserver-kubelet-client.crt",
            f"--kubelet-client-key={pki}/apiserver-kubelet-client.key",
            f"--kubelet-certificate-authority={pki}/ca.crt", "--kubelet-preferred-address-types=Hostname",
            # The `kubernetes` Service's endpoint would be 127.0.0.1, which
            # Endpoints refuse; no pod here talks to the API through it.
            "--endpoint-reconciler-type=none", "--profiling=false"],
        "kube-controller-manager": [
            str(bin_dir / "kube-controller-manager"), *kubeconfigs("kube-controller-manager"),
            "--bind-address=127.0.0.1", f"--secure-port={PORTS['kube-controller-manager']}",
            "--leader-elect=false", "--use-service-account-credentials=true",
            f"--service-account-private-key-file={pki}/sa.key", f"--root-ca-file={pki}/ca.crt",
            f"--cluster-signing-cert-file={pki}/ca.crt", f"--cluster-signing-key-file={pki}/ca.key",
            f"--service-cluster-ip-range={SERVICE_CIDR}", "--profiling=false"],
        "kube-scheduler": [
            str(bin_dir / "kube-scheduler"), *kubeconfigs("kube-scheduler"),
            "--bind-address=127.0.0.1", f"--secure-port={PORTS['kube-scheduler']}", "--leader-elect=false",
            "--profiling=false"],
        "kubelet": [
            str(bin_dir / "kubelet"), f"--config={kubelet_config()}",
            f"--kubeconfig={client_kubeconfig('kubelet')}", f"--root-dir={STATE / 'kubelet'}",
            f"--hostname-override={NODE_NAME}"],
    }


def _pid(name: str) -> int | None:
    path = PIDS / f"{name}.pid"
    try:
        pid = int(path.read_text())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    return pid


def _admin_context() -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(PKI / "ca.crt"))
    context.load_cert_chain(str(PKI / "admin.crt"), str(PKI / "admin.key"))
    return context


def _get(url: str, context: ssl.SSLContext | None = None, timeout: float = 2.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, context=context, timeout=timeout) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as exc:
        return 0, str(exc)


def _insecure() -> ssl.SSLContext:
    # The controller-manager's and scheduler's health endpoints serve a
    # self-signed certificate; only their /healthz answer is read.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def node_ready() -> bool:
    status, body = _get(f"{API_URL}/api/v1/nodes/{NODE_NAME}", _admin_context())
    if status != 200:
        return False
    conditions = json.loads(body).get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


HEALTH: dict[str, Callable[[], bool]] = {
    "etcd": lambda: _get(f"http://127.0.0.1:{PORTS['etcd']}/health")[1].find('"health":"true"') >= 0,
    "containerd": lambda: CONTAINERD_SOCK.is_socket(),
    "kube-apiserver": lambda: _get(f"{API_URL}/readyz", _admin_context())[0] == 200,
    "kube-controller-manager": lambda: _get(
        f"https://127.0.0.1:{PORTS['kube-controller-manager']}/healthz", _insecure())[0] == 200,
    "kube-scheduler": lambda: _get(f"https://127.0.0.1:{PORTS['kube-scheduler']}/healthz", _insecure())[0] == 200,
    "kubelet": node_ready,
}


def _log_tail(name: str, lines: int = 25) -> str:
    try:
        return "\n".join((LOGS / f"{name}.log").read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def start(name: str, argv: list[str], bin_dir: Path, timeout: float = 120) -> None:
    if _pid(name) and HEALTH[name]():
        return
    LOGS.mkdir(parents=True, exist_ok=True)
    PIDS.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/sbin:/usr/bin:/sbin:/bin"}
    with open(LOGS / f"{name}.log", "ab") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env=env, start_new_session=True, cwd=STATE)
    (PIDS / f"{name}.pid").write_text(str(process.pid))
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process.poll() is not None:
            raise ClusterError(f"{name} exited ({process.returncode}); last lines of {LOGS / name}.log:\n"
                               + _log_tail(name))
        if HEALTH[name]():
            say(f"{name} ready ({time.monotonic() - started:.1f}s)")
            return
        time.sleep(0.3)
    raise ClusterError(f"{name} not ready within {timeout:.0f}s; last lines of {LOGS / name}.log:\n" + _log_tail(name))


def ports_taken() -> list[int]:
    taken = []
    for port in PORTS.values():
        with socket.socket() as sock:
            sock.settimeout(0.3)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                taken.append(port)
    return taken


def running() -> bool:
    return _pid("kube-apiserver") is not None


def up() -> Path:
    """Start every component (those already running are kept); returns the
    admin kubeconfig."""
    bin_dir = binaries()
    if not running():
        taken = ports_taken()
        if taken:
            raise ClusterError(f"ports {', '.join(map(str, taken))} are in use by something else; "
                               "the sandbox cluster needs them on 127.0.0.1")
    STATE.mkdir(parents=True, exist_ok=True)
    RUN.mkdir(mode=0o700, parents=True, exist_ok=True)
    ensure_pki()
    client_kubeconfig("admin")
    argv = commands(bin_dir)
    for name in COMPONENTS:
        start(name, argv[name], bin_dir)
    return ADMIN_KUBECONFIG


# ---------------------------------------------------------------------- down

def ctr(*args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    bin_dir = binaries(build=False)
    return subprocess.run([str(bin_dir / "ctr"), "--address", str(CONTAINERD_SOCK), "--namespace", "k8s.io", *args],
                          capture_output=True, text=True, check=check, timeout=120)


def stop_component(name: str, timeout: float = 20) -> None:
    pid = _pid(name)
    if pid is None:
        return
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _pid(name):
        time.sleep(0.2)
    if _pid(name):
        os.killpg(pid, signal.SIGKILL)
        time.sleep(0.5)


def _pod_cgroups() -> list[Path]:
    """The kubelet's pod cgroups (cgroupfs driver: /kubepods/...) in every
    hierarchy, deepest first."""
    found: list[Path] = []
    for hierarchy in CGROUP_ROOT.iterdir():
        top = hierarchy / "kubepods"
        if top.is_dir():
            found += [Path(dirpath) for dirpath, _, _ in os.walk(top)]
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def _cgroup_pids() -> set[int]:
    pids: set[int] = set()
    for cgroup in _pod_cgroups():
        try:
            pids |= {int(p) for p in (cgroup / "cgroup.procs").read_text().split()}
        except OSError:
            continue
    return pids


def _our_processes() -> list[tuple[int, str]]:
    """Processes of the cluster: its components, containerd's shims and every
    process in a pod cgroup."""
    markers = (str(STATE), str(RUN), "aiagents-runbooks/kube")
    found = {pid: "" for pid in _cgroup_pids()}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(marker in cmdline for marker in markers):
            found[int(entry.name)] = cmdline
    found.pop(os.getpid(), None)
    result = []
    for pid, cmdline in found.items():
        if not cmdline:
            try:
                cmdline = (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
        result.append((pid, cmdline.strip()[:120]))
    return result


def _mounts() -> list[str]:
    """Mount points under the cluster's state or run directories, deepest first."""
    points = []
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            point = line.split()[4].replace("\\040", " ")
            if point.startswith((str(STATE), str(RUN))):
                points.append(point)
    return sorted(points, key=len, reverse=True)


def leftovers() -> list[str]:
    found = [f"process {pid} ({cmd})" for pid, cmd in _our_processes()]
    found += [f"mount {point}" for point in _mounts()]
    found += [f"cgroup {cgroup}" for cgroup in _pod_cgroups()]
    found += [f"port {port}" for port in ports_taken()]
    found += [f"directory {path}" for path in (STATE, RUN) if path.exists()]
    return found


def down() -> list[str]:
    """Stop everything and remove the cluster's state; returns what was left
    (empty when down is complete)."""
    stop_component("kubelet")
    # What the kubelet did not stop: containerd's tasks and containers. Its
    # snapshots and images go with its root, under the state directory.
    left: list[str] = []
    if _pid("containerd"):
        for task in ctr("tasks", "ls", "-q").stdout.split():
            ctr("tasks", "kill", "-s", "SIGKILL", task)
            ctr("tasks", "delete", "-f", task)
        for container in ctr("containers", "ls", "-q").stdout.split():
            ctr("containers", "rm", container)
        left += [f"containerd container {c[:12]}" for c in ctr("containers", "ls", "-q").stdout.split()]
    for pid in _cgroup_pids():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for name in reversed(COMPONENTS):
        if name != "kubelet":
            stop_component(name)
    for pid, _ in _our_processes():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    time.sleep(0.5)
    for point in _mounts():
        subprocess.run(["umount", point], capture_output=True)
    for point in _mounts():
        subprocess.run(["umount", "-l", point], capture_output=True)
    for cgroup in _pod_cgroups():
        try:
            cgroup.rmdir()
        except OSError:
            pass
    # The kubelet links each container's log into /var/log/containers.
    links = Path("/var/log/containers")
    if links.is_dir():
        for link in links.iterdir():
            if link.is_symlink() and os.readlink(link).startswith(str(STATE)):
                link.unlink()
    if not _mounts():
        subprocess.run(["rm", "-rf", "--one-file-system", str(STATE), str(RUN)], capture_output=True)
    deadline = time.monotonic() + 15
    while (remaining := leftovers()) and time.monotonic() < deadline:
        time.sleep(0.5)
    return left + remaining


def status() -> dict[str, bool]:
    return {name: bool(_pid(name)) and HEALTH[name]() for name in COMPONENTS}


def memory_rss() -> dict[str, int]:
    """Resident memory of each running component, in bytes."""
    result = {}
    for name in COMPONENTS:
        pid = _pid(name)
        if pid is None:
            continue
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                result[name] = int(line.split()[1]) * 1024
    return result
