"""A real Prometheus (the Debian binary) scraping an exporter the test controls.

The exporter serves the platform's metric names with values the test sets,
so what Prometheus answers can be checked against what was exported. The
alert rules are the sandbox's own file.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.harness.servers import free_port, wait_for_port

REPO = Path(__file__).resolve().parents[2]
BUCKETS = (1, 5, 30, 120, 300)


class Exporter:
    """The platform's metrics, values set by the test."""

    def __init__(self) -> None:
        self.values = {"queue_depth": 0.0, "worker_active_count": 2.0, "enhancement_success_rate": 100.0}
        self.requests = {("success", "acme-corp"): 0, ("failure", "acme-corp"): 0}
        self.durations: list[float] = []
        self.lock = threading.Lock()
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                body = exporter.render().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def render(self) -> str:
        with self.lock:
            lines = [f"{name} {value}" for name, value in self.values.items()]
            for (status, tenant), count in self.requests.items():
                lines.append(f'enhancement_requests_total{{status="{status}",tenant_id="{tenant}"}} {count}')
            for bound in BUCKETS:
                lines.append(f'enhancement_duration_seconds_bucket{{le="{bound}"}} '
                             f"{sum(1 for d in self.durations if d <= bound)}")
            lines.append(f'enhancement_duration_seconds_bucket{{le="+Inf"}} {len(self.durations)}')
            lines.append(f"enhancement_duration_seconds_count {len(self.durations)}")
            lines.append(f"enhancement_duration_seconds_sum {sum(self.durations)}")
        return "\n".join(lines) + "\n"

    def set(self, name: str, value: float) -> None:
        with self.lock:
            self.values[name] = value

    def stop(self) -> None:
        self.server.shutdown()


class PrometheusServer:
    def __init__(self, workdir: Path, exporter: Exporter) -> None:
        self.workdir = workdir
        self.port = free_port()
        shutil.copy(REPO / "sandbox/prometheus/alerts.yml", workdir / "alerts.yml")
        (workdir / "prometheus.yml").write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "rule_files: [alerts.yml]\n"
            f"scrape_configs:\n  - job_name: platform\n    static_configs:\n"
            f"      - targets: ['127.0.0.1:{exporter.port}']\n")
        self.proc = subprocess.Popen(
            [shutil.which("prometheus") or "/usr/bin/prometheus", f"--config.file={workdir / 'prometheus.yml'}",
             f"--storage.tsdb.path={workdir / 'data'}", f"--web.listen-address=127.0.0.1:{self.port}"],
            cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, proc=self.proc)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_for(self, query: str, predicate, timeout: float = 30) -> None:
        """Until Prometheus' answer to `query` satisfies `predicate` (scrapes take a second or two)."""
        import json
        from urllib.parse import quote

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/api/v1/query?query={quote(query)}", timeout=5) as answer:
                    result = json.loads(answer.read())["data"]["result"]
                if predicate(result):
                    return
            except OSError:
                pass
            time.sleep(0.25)
        raise TimeoutError(f"Prometheus never satisfied the wait on {query}")

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()
