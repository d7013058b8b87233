"""Container health check of a stand-in: its control server answers."""
from __future__ import annotations

import os
import sys
import urllib.request

role = os.environ["SANDBOX_ROLE"].upper()
url = f"http://127.0.0.1:{os.environ[role + '_CONTROL_PORT']}/healthz"
try:
    urllib.request.urlopen(url, timeout=2).read()
except OSError as exc:
    sys.exit(f"{url}: {exc}")
