"""Reading the versions out of a Celery worker's report."""

from __future__ import annotations

from ansible_collections.aiagents.runbooks.plugins.module_utils._celery import software

REPORT = (
    "software -> celery:5.4.0 (opalescent) kombu:5.4.2 py:3.11.2\n"
    "            billiard:4.2.1 redis:5.2.1\n"
    "platform -> system:Linux arch:64bit, ELF\n"
    "            kernel version:6.1.0-28-amd64 imp:CPython\n"
    "loader   -> celery.loaders.app.AppLoader\n"
    "settings -> transport:redis results:disabled\n\n"
    "broker_url: 'redis://:********@10.0.0.5:6379/0'\n"
    "worker_version_note: 'v9:not-a-package'\n"
)


def test_the_software_section_gives_each_package_and_its_version() -> None:
    assert software({"ok": REPORT}) == {"celery": "5.4.0", "kombu": "5.4.2", "py": "3.11.2",
                                        "billiard": "4.2.1", "redis": "5.2.1"}


def test_nothing_after_the_software_section_is_read() -> None:
    # Neither the kernel version of the platform section nor anything among the settings.
    assert "version" not in software({"ok": REPORT}) and "worker_version_note" not in software({"ok": REPORT})


def test_a_report_without_the_section_or_not_a_report_gives_nothing() -> None:
    assert software({"ok": "platform -> system:Linux"}) == {}
    assert software({"error": "no such command"}) == {}
    assert software({}) == {}
    assert software("software -> celery:5.4.0") == {}  # type: ignore[arg-type]
