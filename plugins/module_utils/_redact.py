# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one redaction helper every module uses: find credentials, hide them everywhere.

An incident report travels: into the run's output, the registered result, the
Markdown report and the ServiceDesk Plus ticket. So every credential a module
is given - an option of its own, the userinfo of a URL, a secret-named query
parameter or header - is found in the raw arguments, before validation can
echo them, and masked in everything the module returns or fails with, in every
form it may take there: as given, without its auth scheme, URL-encoded or
decoded, escaped by ``repr`` or JSON, or cut into pieces by a URL parser.

Ansible masks a registered value wherever it occurs, inside any word. A value
shorter than ``MIN_MASKED_LENGTH`` would star out unrelated letters that way,
so short values are masked only where they stand as a whole token.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlsplit, urlunsplit

from ansible.module_utils.basic import AnsibleModule

MASK = "********"
MIN_MASKED_LENGTH = 4  # shorter values are masked as whole tokens only

# A query parameter, header or option whose name contains one of these is a credential...
_SECRET_PARTS = ("key", "token", "secret", "passw", "pwd", "auth", "signature", "credential", "session", "cookie")
# ...and so is one with one of these as a whole word (a substring would hit "design", "passive", ...).
_SECRET_WORDS = {"sig", "pass", "pw", "code", "jwt"}
_AUTH_SCHEME = re.compile(r"^\s*(?:bearer|basic|token|digest|apikey|api-key|zoho-oauthtoken)\s+(\S.*)$", re.IGNORECASE)
# A value found only by its name that is this short is a flag (auth=1, session=on), not a credential.
_MIN_GUESSED_LENGTH = 4
# Where a URL parser may cut a userinfo that was not percent-encoded.
_URL_DELIMITERS = re.compile(r"[/#?@:\[\]]")


def is_secret_name(name: Any) -> bool:
    """Whether a query parameter, header or field of this name carries a credential (api_key, X-Api-Key, ...)."""
    lowered = str(name).lower()
    return (any(part in lowered for part in _SECRET_PARTS)
            or any(word in _SECRET_WORDS for word in re.split(r"[^a-z0-9]+", lowered)))


def forms(value: Any, guessed: bool = False) -> set[str]:
    """A credential as given and as it may also appear in output.

    Without its auth scheme, URL-encoded or decoded, and escaped the way
    ``repr`` and JSON write control or non-ASCII characters.
    """
    if value is None or isinstance(value, bool):
        return set()
    text = str(value)
    if not text.strip() or (guessed and len(text.strip()) < _MIN_GUESSED_LENGTH):
        return set()
    found = {text, text.strip()}
    scheme = _AUTH_SCHEME.match(text)
    if scheme:
        found.add(scheme.group(1).strip())
    for form in list(found):
        found |= {unquote(form), quote(form, safe=""), quote_plus(form, safe=""),
                  repr(form)[1:-1], json.dumps(form)[1:-1], json.dumps(form, ensure_ascii=False)[1:-1],
                  form.encode("unicode_escape").decode("ascii")}
    return {form for form in found if form.strip()}


def url_secrets(url: Any) -> set[str]:
    """Every credential in a URL: the userinfo (even one a parser would cut) and secret-named query values."""
    if not isinstance(url, str) or not url:
        return set()
    found: set[str] = set()
    _scheme, sep, rest = url.partition("://")
    if not sep:
        rest = url  # "user:pass@host" without a scheme is still userinfo
    if "@" in rest:
        # Everything up to the last "@" is userinfo, whatever a parser makes of an unencoded "/" or "#" in it.
        userinfo = rest.rsplit("@", 1)[0]
        user, colon, password = userinfo.partition(":")
        for part in (password if colon else user, userinfo):
            if part:
                found |= forms(part)
                found |= {piece for piece in _URL_DELIMITERS.split(part) if piece}
    try:
        query = urlsplit(url).query
    except ValueError:
        query = url.partition("?")[2]
    if query:
        for name, value in parse_qsl(query, keep_blank_values=True):
            if is_secret_name(name):
                found |= forms(value, guessed=True)
        for pair in query.split("&"):  # the raw (still encoded) value, as it sits in the URL
            name, _sep, value = pair.partition("=")
            if is_secret_name(unquote(name)):
                found |= forms(value, guessed=True)
    return found


def mapping_secrets(mapping: Any) -> set[str]:
    """Values of secret-named entries of a dict (headers, query or connection parameters).

    A dict option may still be text ("k=v, k2=v2" or JSON) before validation: if
    it cannot be told apart, all of it is a secret.
    """
    if isinstance(mapping, str) and mapping.strip():
        try:
            mapping = json.loads(mapping)
        except ValueError:
            pairs = [part.partition("=") for part in re.split(r"[,\s]+", mapping) if part]
            if not all(sep for _name, sep, _value in pairs):
                return forms(mapping)
            mapping = {name: value for name, _sep, value in pairs}
    if not isinstance(mapping, Mapping):
        return set()
    found: set[str] = set()
    for name, value in mapping.items():
        if is_secret_name(name):
            found |= forms(value, guessed=True) if not isinstance(value, (Mapping, list)) else forms(json.dumps(value))
    return found


def redact_url(url: Any) -> str:
    """The URL to show: no userinfo, every query value hidden; never raises, whatever the text."""
    text = str(url)
    try:
        parts = urlsplit(text)
        host = parts.hostname or ""
        try:
            port = parts.port
        except ValueError:
            port = None
    except ValueError:
        return "<malformed url>"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port else host
    query = "&".join(f"{pair.split('=', 1)[0]}=***" for pair in parts.query.split("&") if pair)
    shown = urlunsplit((parts.scheme, netloc, parts.path, query, ""))
    return printable(shown)


def printable(text: str) -> str:
    """The text with each control or other unprintable character escaped as repr would (a newline as \\n)."""
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def mask_text(text: str, secrets: Iterable[str]) -> str:
    """The text with every secret masked: long ones anywhere, short ones only as whole tokens."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        if not secret:
            continue
        if len(secret) >= MIN_MASKED_LENGTH:
            text = text.replace(secret, MASK)
        else:
            text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(secret)}(?![A-Za-z0-9])", MASK, text)
    return text


def mask_data(data: Any, secrets: Iterable[str]) -> Any:
    """A copy of nested data (dicts, lists, strings) with mask_text applied to every string, keys included."""
    secrets = set(secrets)
    if not secrets:
        return data
    if isinstance(data, str):
        return mask_text(data, secrets)
    if isinstance(data, Mapping):
        return {mask_data(key, secrets): mask_data(value, secrets) for key, value in data.items()}
    if isinstance(data, (list, tuple, set)):
        return [mask_data(item, secrets) for item in data]
    return data


def spec_secrets(params: Any, spec: Mapping[str, Any]) -> set[str]:
    """Credentials among raw parameters by their spec: no_log options, URLs' userinfo, secret-named dicts."""
    found: set[str] = set()
    if not isinstance(params, Mapping):
        return found
    for name, option in spec.items():
        names = [name, *option.get("aliases", [])]
        for value in (params.get(alias) for alias in names if alias in params):
            if option.get("no_log"):
                found |= forms(value) if not isinstance(value, (Mapping, list)) else forms(json.dumps(value))
            if isinstance(value, str) and ("://" in value or "@" in value):
                found |= url_secrets(value)
            if option.get("type") == "dict" or isinstance(value, Mapping):
                found |= mapping_secrets(value)
            if option.get("options"):
                items = value if isinstance(value, list) else [value]
                for item in items:
                    found |= spec_secrets(item, option["options"])
    return found


def shape_problem(params: Any, spec: Mapping[str, Any], prefix: str = "") -> str | None:
    """Why an option with suboptions cannot be validated, or None.

    ansible-core raises a TypeError, a traceback, when such an option holds a
    number, a boolean or a list where a dictionary belongs, and an OverflowError
    for an int option given an infinite number; say it in a sentence.
    Text is left to Ansible, which parses "k=v" or JSON and says when it cannot.
    """
    if not isinstance(params, Mapping):
        return None
    for name, option in spec.items():
        value = params.get(name)
        label = f"{prefix}{name}"
        if option.get("type") == "int" and isinstance(value, float) and not math.isfinite(value):
            return f"option {label} must be a whole number, got {value!r}"  # int(inf) is an OverflowError
        if value is None or isinstance(value, str) or not option.get("options"):
            continue
        items = [(label, value)]
        if option.get("type") == "list":
            if not isinstance(value, list):
                return f"option {label} must be a list of dictionaries, got {type(value).__name__}"
            items = [(f"{label}[{index}]", item) for index, item in enumerate(value) if not isinstance(item, str)]
        for where, item in items:
            if not isinstance(item, Mapping):
                return f"option {where} must be a dictionary, got {type(item).__name__}"
            problem = shape_problem(item, option["options"], f"{where}.")
            if problem:
                return problem
    return None


class RunbookModule(AnsibleModule):
    """AnsibleModule that masks every credential it was given, wherever it could surface.

    Credentials are collected from the raw arguments (``spec_secrets``, plus the
    module's own ``secrets`` callable for what only it can know) before
    validation, whose errors echo arguments, and again once validated. Call
    ``protect`` for any credential found later (a token read from a file).
    Values shorter than MIN_MASKED_LENGTH are masked as whole tokens only.
    """

    def __init__(self, *args: Any, secrets: Callable[[Any], set[str]] | None = None, **kwargs: Any) -> None:
        self._find_secrets = secrets
        self.short_secrets: set[str] = set()
        super().__init__(*args, **kwargs)
        self._collect()

    def _load_params(self) -> None:
        super()._load_params()
        self._collect()
        problem = shape_problem(self.params, getattr(self, "argument_spec", {}) or {})
        if problem:
            self.fail_json(msg=problem)

    def _collect(self) -> None:
        if not isinstance(getattr(self, "params", None), dict):
            return
        found = spec_secrets(self.params, getattr(self, "argument_spec", {}) or {})
        if self._find_secrets is not None:
            try:
                found |= set(self._find_secrets(self.params))
            except Exception:  # pylint: disable=broad-except  # a finder must never be the crash it prevents
                pass
        self.protect(found)

    def protect(self, values: Iterable[Any]) -> None:
        """Mask these values (and their other forms) in everything this module returns."""
        for value in values:
            for form in forms(value):
                (self.no_log_values if len(form) >= MIN_MASKED_LENGTH else self.short_secrets).add(form)

    def _return_formatted(self, kwargs: dict[str, Any]) -> None:
        if isinstance(kwargs.get("msg"), str):
            # One line, whatever the input echoed in it holds: control characters are shown escaped.
            kwargs["msg"] = printable(kwargs["msg"])
        # Ansible masks no_log values inside any word: a short one would star unrelated letters.
        short = {value for value in self.no_log_values if len(str(value)) < MIN_MASKED_LENGTH}
        self.no_log_values -= short
        self.short_secrets |= {str(value) for value in short}
        super()._return_formatted(kwargs)

    def _record_module_result(self, o: dict[str, Any]) -> None:
        if self.short_secrets:
            preserved = {key: value for key, value in o.items() if value is None or isinstance(value, bool)}
            o = mask_data(o, self.short_secrets)
            o.update(preserved)
        super()._record_module_result(o)
