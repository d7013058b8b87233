"""scripts/bootstrap.sh: a second run changes nothing; elsewhere it names what is missing."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BOOTSTRAP = REPO / "scripts" / "bootstrap.sh"
DOING = ("installing", "creating", "linking docker", "starting dockerd")


def bootstrap(env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(BOOTSTRAP)], env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=600, check=False)


def test_a_second_run_changes_nothing():
    """The checkout is bootstrapped already (the test command ran it): running it
    again reports every step as done and touches neither the venv nor its stamp."""
    stamp = REPO / ".venv" / ".requirements.sha256"
    before = (stamp.stat().st_mtime_ns, (REPO / ".venv" / "bin" / "python").stat().st_mtime_ns)

    run = bootstrap()

    assert run.returncode == 0, run.stdout + run.stderr
    steps = [line for line in run.stdout.splitlines() if line.startswith("==> ")]
    assert steps[-1].startswith("==> bootstrap complete"), run.stdout
    assert [step for step in steps if any(word in step for word in DOING)] == [], run.stdout
    assert any("system packages present" in step for step in steps), run.stdout
    assert any("python requirements up to date" in step for step in steps), run.stdout
    assert (stamp.stat().st_mtime_ns, (REPO / ".venv" / "bin" / "python").stat().st_mtime_ns) == before


def test_on_another_system_it_installs_nothing_and_names_each_missing_part(tmp_path):
    """A non-Debian system with only bash and python3: no package manager is
    touched, no virtualenv is created, and every missing part is named."""
    os_release = tmp_path / "os-release"
    os_release.write_text('ID=fedora\nNAME="Fedora Linux"\n')
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname", "id", "cat", "sha256sum", "cut"):
        os.symlink(shutil.which(tool), bin_dir / tool)
    os.symlink(shutil.which("python3"), bin_dir / "python3")
    venv = tmp_path / "venv"

    run = bootstrap({"AIAGENTS_OS_RELEASE": str(os_release), "PATH": str(bin_dir), "VENV": str(venv)})

    assert run.returncode == 1, run.stdout + run.stderr
    assert "this is not Debian as root, so nothing was installed" in run.stderr
    for part in ("redis-server", "PostgreSQL 15 server binaries", "prometheus", "Docker Engine",
                 "debootstrap", "shellcheck", "make (package make)"):
        assert part in run.stderr, f"{part!r} not named:\n{run.stderr}"
    assert "python3 >= 3.11" not in run.stderr  # present, so not named
    assert "Traceback" not in run.stderr
    assert not venv.exists()
