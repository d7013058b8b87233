"""Fuzz this collection's modules from their own argument specs.

A module's spec is read by running its ``main()`` until it builds its
AnsibleModule, so the strategies follow the real options (types, choices,
suboptions) and never a copy of them. Each generated call runs the module
in-process, as the collection's action plugins do on the controller, so a few
hundred calls take seconds, not the minutes ``ansible`` would need per call.

What can reach the network is drawn from loopback-only values: a random host
name would be a DNS lookup, and tests never look names up in a loop.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import math
import time
from dataclasses import dataclass
from typing import Any
from unittest import mock

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args
from hypothesis import strategies as st

PACKAGE = "ansible_collections.aiagents.runbooks.plugins.modules"

# Text that has broken parsers and masking before: control characters, CR/LF, non-Latin-1, braces, quotes.
_ODD_TEXT = ["", " ", "\r\n", "a\r\nX-Injected: 1", "ä€😀", "a\x00b", "\x01\x7f", "{GUID}", "'; DROP TABLE x;--",
             "%", "%zz", "../../etc/passwd", "a" * 300, "null", "[]", "{}", "-1", "nan", "inf"]
_TEXT = st.one_of(st.sampled_from(_ODD_TEXT),
                  st.text(st.characters(exclude_categories=("Cs",)), max_size=30))
_INT = st.one_of(st.sampled_from([-1, 0, 1, 2, 65535, 65536, 2**31, -(2**63)]), st.integers(-10**6, 10**6),
                 st.sampled_from(["abc", "1.5", "", "0x10"]))
_FLOAT = st.one_of(st.sampled_from([0.5, 1, 2, 0, -1, -0.0, math.inf, -math.inf, math.nan, 1e12, 1e-9]),
                   st.floats(-1e6, 1e6), st.sampled_from(["abc", "", "1e400"]))
_BOOL = st.one_of(st.booleans(), st.sampled_from(["yes", "no", "maybe", 2]))
_PATH = st.sampled_from(["/nonexistent/fuzz.pem", "/etc/hostname", "/dev/null", "", "relative/x", "/proc/self",
                         "/root"])
# The decorations a credential gets: each has split a URL or defeated masking in the past.
_DECORATIONS = st.sampled_from(["", "/", "#", "@", ":", "%2F", "?", "\x01", "ä", " ", "\r\n", "'", "\\"])


class _Captured(Exception):
    pass


def module_spec(name: str) -> dict[str, Any]:
    """The keyword arguments the module gives AnsibleModule (argument_spec, mutually_exclusive, ...)."""
    module = importlib.import_module(f"{PACKAGE}.{name}")

    def capture(_self, *args: Any, **kwargs: Any) -> None:
        if args:
            kwargs["argument_spec"] = args[0]
        raise _Captured(kwargs)

    with mock.patch.object(basic.AnsibleModule, "__init__", capture), patch_module_args({}):
        try:
            module.main()
        except _Captured as captured:
            return captured.args[0]
    raise AssertionError(f"{name}.main() never built its AnsibleModule")


@dataclass
class Outcome:
    result: dict[str, Any]
    output: str  # everything the module wrote: its result as serialised, and any stray print
    elapsed: float


def run_in_process(name: str, args: dict[str, Any], check_mode: bool = False) -> Outcome:
    """One call of the module's main(); an exception escaping it fails the calling test with its traceback."""
    module = importlib.import_module(f"{PACKAGE}.{name}")
    stdout, stderr = io.StringIO(), io.StringIO()
    module_args = {**args, "_ansible_check_mode": check_mode}
    started = time.monotonic()
    with patch_module_args(module_args), contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            module.main()
        except SystemExit:
            pass  # exit_json / fail_json
    elapsed = time.monotonic() - started
    output = stdout.getvalue() + stderr.getvalue()
    text = stdout.getvalue().strip()
    try:
        result = json.loads(text[text.index("{"):])
    except ValueError as exc:
        raise AssertionError(f"{name} wrote no result JSON: {output[-2000:]!r}") from exc
    return Outcome(result, output, elapsed)


def secret_token(draw) -> str:
    """A credential distinct enough that finding it in output can only be a leak."""
    return "Zq" + draw(st.text("0123456789abcdef", min_size=12, max_size=12)) + "Xk"


def decorated(draw, core: str) -> str:
    return draw(_DECORATIONS) + core + draw(_DECORATIONS)


def url(draw, schemes: list[str], hosts: list[str], ports: list[Any], path: st.SearchStrategy[str],
        userinfo: str | None) -> str:
    """A URL on loopback (or malformed): never a host name that would need a DNS lookup."""
    scheme = draw(st.sampled_from(schemes))
    host = draw(st.sampled_from(hosts))
    port = draw(st.sampled_from(ports))
    auth = f"{userinfo}@" if userinfo is not None and draw(st.booleans()) else ""
    netloc = f"{auth}{host}" + (f":{port}" if port is not None else "")
    return f"{scheme}://{netloc}{draw(path)}" if scheme else f"{netloc}{draw(path)}"


def value_for(option: dict[str, Any], overrides: dict[str, st.SearchStrategy], name: str) -> st.SearchStrategy:
    """A strategy for one option: its override, else one from its spec (valid values and junk)."""
    if name in overrides:
        return overrides[name]
    kind = option.get("type", "str")
    if option.get("choices"):
        valid = st.sampled_from(list(option["choices"]))
        return st.one_of(valid, st.lists(valid, max_size=3), _TEXT) if kind == "list" else st.one_of(valid, _TEXT)
    if option.get("options"):
        suboptions = option["options"]
        sub = st.fixed_dictionaries({}, optional={key: value_for(spec, overrides, key)
                                                  for key, spec in suboptions.items()})
        return st.one_of(st.lists(sub, max_size=3), _TEXT) if kind == "list" else st.one_of(sub, _TEXT, _INT)
    scalar = {"str": _TEXT, "int": _INT, "float": _FLOAT, "bool": _BOOL, "path": _PATH, "raw": _TEXT}
    if kind == "list":
        element = scalar.get(option.get("elements", "str"), _TEXT)
        return st.one_of(st.lists(element, max_size=4), _TEXT)
    if kind == "dict":
        return st.one_of(st.dictionaries(_TEXT, st.one_of(_TEXT, _INT, _FLOAT), max_size=3), _TEXT)
    return scalar.get(kind, _TEXT)


def timeout_budget(args: dict[str, Any], spec: dict[str, Any]) -> float:
    """The sum of the run's valid timeouts (each option named *timeout*, given or by default)."""
    total = 0.0

    def walk(values: dict[str, Any], options: dict[str, Any]) -> None:
        nonlocal total
        for key, option in options.items():
            value = values.get(key, option.get("default")) if isinstance(values, dict) else None
            if "timeout" in key and isinstance(value, (int, float)) and not isinstance(value, bool) \
                    and 0 < value < math.inf:
                total += value
            if option.get("options"):
                for item in value if isinstance(value, list) else [value]:
                    if isinstance(item, dict):
                        walk(item, option["options"])

    walk(args, spec)
    return total
