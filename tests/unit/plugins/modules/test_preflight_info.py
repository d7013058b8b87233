from __future__ import annotations

import json
import sys

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.aiagents.runbooks.plugins.modules import preflight_info


def run(capsys, args):
    with patch_module_args(args), pytest.raises(SystemExit):
        preflight_info.main()
    return json.loads(capsys.readouterr().out)


def test_reports_installed_libraries(capsys):
    result = run(capsys, {"require": ["redis", "psycopg2"]})
    assert result["changed"] is False
    assert result["findings"] == []
    assert result["libraries"]["redis"]["available"] is True
    assert result["libraries"]["psycopg2"]["version"] != "unknown"


def test_missing_required_library_is_a_critical_finding(capsys, monkeypatch):
    # None in sys.modules makes the import fail exactly as a missing package does.
    monkeypatch.setitem(sys.modules, "kubernetes", None)
    result = run(capsys, {"require": ["kubernetes", "redis"]})
    assert [f["id"] for f in result["findings"]] == ["dependency_missing"]
    missing = result["findings"][0]
    assert missing["severity"] == "critical"
    assert missing["evidence"]["library"] == "kubernetes"
    assert "pip install 'kubernetes'" in missing["resolution"]


def test_unknown_library_name_is_rejected(capsys):
    result = run(capsys, {"require": ["mysql"]})
    assert result["failed"] is True
    assert "require" in result["msg"]


def test_a_library_that_exits_while_importing_is_a_finding_not_a_silent_end(capsys, monkeypatch, tmp_path):
    # A broken install can run sys.exit() at import: the module must still answer, with the cause.
    (tmp_path / "celery.py").write_text("import sys\nsys.exit('celery: broken install')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "celery", raising=False)
    result = run(capsys, {"require": ["celery"]})
    assert [f["id"] for f in result["findings"]] == ["dependency_missing"]
    assert result["libraries"]["celery"] == {"available": False, "module": "celery",
                                             "error": "SystemExit: celery: broken install"}


def test_a_library_named_twice_is_one_finding(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "kubernetes", None)
    result = run(capsys, {"require": ["kubernetes", "kubernetes"]})
    assert [f["evidence"]["library"] for f in result["findings"]] == ["kubernetes"]


@pytest.mark.parametrize("require", [{"redis": True}, [["redis"]], 5])
def test_require_of_the_wrong_shape_is_one_sentence_naming_it(capsys, require):
    result = run(capsys, {"require": require})
    assert result["failed"] is True and "require" in result["msg"] and "Traceback" not in result["msg"]
