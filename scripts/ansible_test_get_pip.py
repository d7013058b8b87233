"""Stand-in for the get-pip.py that ansible-test downloads to seed its venvs.

ansible-test fetches get-pip.py from a host this machine cannot reach; pip
itself is reachable through PyPI. This does what get-pip.py does for
ansible-test: put pip into the running (empty) virtualenv, then install the
requested packages (`pip==X` and friends) with the given pip options.
scripts/sanity.sh places it in ansible-test's cache under the expected name.
"""

from __future__ import annotations

import ensurepip
import os
import ssl
import subprocess
import sys

# get-pip.py's own switches; pip install does not know them.
GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}


def system_ca_bundle() -> list[str]:
    """ansible-test runs pip with PIP_CONFIG_FILE=/dev/null, so pip.conf's
    `cert` is lost; the pip that ensurepip brings trusts only its own bundle.
    Point it at the system's. (The pip it installs, 24.2+, uses the system
    trust store by itself.)"""
    cafile = os.environ.get("SSL_CERT_FILE") or ssl.get_default_verify_paths().openssl_cafile
    return ["--cert", cafile] if cafile and os.path.exists(cafile) else []


def main(argv: list[str]) -> int:
    ensurepip.bootstrap(upgrade=True)
    args = [arg for arg in argv if arg not in GET_PIP_ONLY]
    return subprocess.call([sys.executable, "-m", "pip", "install", *system_ca_bundle(), *args])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
