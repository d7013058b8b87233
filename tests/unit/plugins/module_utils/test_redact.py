"""The one redaction helper: every form of a credential found, hidden, and nothing else starred."""

from __future__ import annotations

import json

import pytest

from ansible_collections.aiagents.runbooks.plugins.module_utils import _redact
from ansible_collections.aiagents.runbooks.plugins.module_utils._errors import out_of_range


def test_a_password_a_url_parser_would_cut_is_found_whole_and_in_pieces():
    found = _redact.url_secrets("redis://:s3cr/et#p@ss@127.0.0.1:6379/0")
    assert "s3cr/et#p@ss" in found
    # urlsplit puts "et#p" in the path and "ss@127..." after the fragment: the pieces land in error text.
    assert {"s3cr", "et", "p", "ss"} <= found


def test_userinfo_of_a_url_without_password_is_a_token_and_query_secrets_are_found():
    assert "ghp_abcdef123456" in _redact.url_secrets("https://ghp_abcdef123456@prometheus.example/api")
    found = _redact.url_secrets("https://hooks.example/in?token=tok%2Fen-1234&page=2")
    assert {"tok%2Fen-1234", "tok/en-1234"} <= found
    assert "2" not in found


@pytest.mark.parametrize("value, escaped", [
    ("ab\x01cdef12", "ab\\x01cdef12"),       # repr, as in a message formatted with !r
    ("ab\x01cdef12", "ab\\u0001cdef12"),     # JSON
    ("päss wörd!", "p%C3%A4ss%20w%C3%B6rd%21"),  # URL-encoded
    ("Bearer tkn-998877", "tkn-998877"),      # without its scheme
])
def test_every_form_a_credential_may_take_in_output_is_masked(value, escaped):
    assert escaped in _redact.forms(value)


def test_short_values_are_masked_only_as_whole_tokens():
    text = "auth by pw failed; pwd and pwned untouched; (pw)"
    assert _redact.mask_text(text, {"pw"}) == "auth by ******** failed; pwd and pwned untouched; (********)"
    assert _redact.mask_text("long secret123 in secret1234", {"secret123"}) == "long ******** in ********4"


def test_mask_data_reaches_keys_and_nested_values():
    data = {"a": ["x hunter22 y", {"hunter22": 1}], "n": 3}
    assert json.dumps(_redact.mask_data(data, {"hunter22"})).count("hunter22") == 0


def test_mapping_secrets_by_name_as_dict_or_text():
    assert _redact.mapping_secrets({"X-Api-Key": "k-123456", "Accept": "application/json"}) == \
        _redact.forms("k-123456", guessed=True)
    assert "k-123456" in _redact.mapping_secrets("X-Api-Key=k-123456, Accept=json")
    assert "k-123456" in _redact.mapping_secrets('{"password": "k-123456"}')
    assert _redact.mapping_secrets({"session": "on"}) == set()  # a flag, not a credential


@pytest.mark.parametrize("url, shown", [
    ("http://user:pw@[::1]:8080/x?token=abc&q=1", "http://[::1]:8080/x?token=***&q=***"),
    ("http://host:99999/x", "http://host/x"),     # an out-of-range port does not raise
    ("http://[::1/x", "<malformed url>"),
    ("http://h\x00st/\x07", "http://h\\x00st/\\x07"),
])
def test_redact_url_never_raises_and_never_shows_credentials(url, shown):
    assert _redact.redact_url(url) == shown


def test_spec_secrets_follows_no_log_urls_and_suboptions():
    spec = {"url": {"type": "str"}, "password": {"type": "str", "no_log": True},
            "connect_params": {"type": "dict"},
            "endpoints": {"type": "list", "elements": "dict", "options": {"headers": {"type": "dict"}}}}
    params = {"url": "redis://:u-pass-1@h/0", "password": "p-pass-2", "connect_params": {"sslpassword": "c-pass-3"},
              "endpoints": [{"headers": {"Authorization": "Bearer e-pass-4"}}]}
    found = _redact.spec_secrets(params, spec)
    assert {"u-pass-1", "p-pass-2", "c-pass-3", "e-pass-4"} <= found


@pytest.mark.parametrize("value, message", [
    (-1, "timeout must be above 0, got -1"),
    (float("inf"), "timeout must be a finite number, got inf"),
    (float("nan"), "timeout must be a finite number, got nan"),
    (301, "timeout must be at most 300, got 301"),
    ("abc", "timeout must be a number, got 'abc'"),
])
def test_out_of_range_names_the_option(value, message):
    assert out_of_range("timeout", value, above=0, maximum=300) == message


def test_large_bounds_are_written_in_full():
    assert out_of_range("query_chars", 2000000, minimum=0, maximum=1048576) == \
        "query_chars must be at most 1048576, got 2000000"
    assert out_of_range("pid", 2 ** 31, maximum=2147483647) == "pid must be at most 2147483647, got 2147483648"
    assert out_of_range("pid", 5, maximum=2147483647) is None
    assert out_of_range("ratio", 1.5, maximum=0.5) == "ratio must be at most 0.5, got 1.5"


def test_in_range_values_and_unset_options_pass():
    assert out_of_range("timeout", 2.5, above=0, maximum=300) is None
    assert out_of_range("timeout", None, above=0) is None
    assert out_of_range("count", 0, minimum=0) is None


def _result_of(spec, args, capsys, fail_with=None, secrets=None):
    from ansible.module_utils.testing import patch_module_args

    with patch_module_args(args), pytest.raises(SystemExit):
        module = _redact.RunbookModule(argument_spec=spec, secrets=secrets)
        module.fail_json(msg=fail_with.format(**module.params))
    return json.loads(capsys.readouterr().out)


def test_runbook_module_masks_url_userinfo_in_the_message_and_invocation(capsys):
    spec = {"url": {"type": "str"}}
    result = _result_of(spec, {"url": "https://ops:p4ss/w0rd@prom.example:9090"}, capsys,
                        fail_with="query prometheus at {url}: refused")
    assert "p4ss" not in json.dumps(result) and "w0rd" not in json.dumps(result)


def test_runbook_module_masks_a_short_password_without_starring_other_letters(capsys):
    spec = {"password": {"type": "str", "no_log": True}, "host": {"type": "str"}}
    result = _result_of(spec, {"password": "ab", "host": "cabbage"}, capsys, fail_with="auth ab failed at {host}")
    assert result["msg"] == "auth ******** failed at cabbage"
    assert result["invocation"]["module_args"]["host"] == "cabbage"


def test_runbook_module_masks_what_its_own_finder_knows_even_when_validation_fails(capsys):
    spec = {"dsn": {"type": "str"}, "port": {"type": "int"}}
    result = _result_of(spec, {"dsn": "x secretive-dsn-1 y", "port": "not-a-port"}, capsys, fail_with="",
                        secrets=lambda params: {"secretive-dsn-1"})
    assert "port" in result["msg"]
    assert "secretive-dsn-1" not in json.dumps(result)


@pytest.mark.parametrize("params, problem", [
    ({"thresholds": 5}, "option thresholds must be a dictionary, got int"),
    ({"thresholds": [1]}, "option thresholds must be a dictionary, got list"),
    ({"endpoints": [{"name": "a"}, 7]}, "option endpoints[1] must be a dictionary, got int"),
    ({"endpoints": {"name": "a"}}, "option endpoints must be a list of dictionaries, got dict"),
    ({"endpoints": [{"tls": True}]}, "option endpoints[0].tls must be a dictionary, got bool"),
    ({"thresholds": "a=1", "endpoints": [{"name": "a"}]}, None),  # text and right shapes are Ansible's to check
    ({"port": float("inf")}, "option port must be a whole number, got inf"),
    ({"thresholds": {"depth": float("nan")}}, "option thresholds.depth must be a whole number, got nan"),
    ({"port": 1.5}, None),  # Ansible refuses that one itself, in a sentence
])
def test_shape_problem_says_in_a_sentence_what_ansible_would_crash_on(params, problem):
    spec = {"port": {"type": "int"}, "thresholds": {"type": "dict", "options": {"depth": {"type": "int"}}},
            "endpoints": {"type": "list", "elements": "dict",
                          "options": {"name": {"type": "str"}, "tls": {"type": "dict", "options": {"ca": {}}}}}}
    assert _redact.shape_problem(params, spec) == problem
