"""Which parts of an endpoint http_probe_info treats as credentials, to mask them in all it returns."""

from __future__ import annotations

import pytest

from ansible_collections.aiagents.runbooks.plugins.module_utils import _http_probe


@pytest.mark.parametrize("name", ["api_key", "apiKey", "APIKEY", "access_token", "token", "client_secret", "password",
                                  "passwd", "pwd", "X-Amz-Signature", "sig", "auth", "Authorization",
                                  "Proxy-Authorization", "X-Api-Key", "Cookie", "X-Auth-Token", "session_id", "code"])
def test_secret_names(name):
    assert _http_probe.is_secret_name(name)


@pytest.mark.parametrize("name", ["page", "limit", "q", "design", "passive", "status", "X-Request-Id", "Accept",
                                  "User-Agent", "Content-Type"])
def test_ordinary_names(name):
    assert not _http_probe.is_secret_name(name)


def test_query_userinfo_and_headers_give_their_credentials_and_nothing_else():
    endpoints = [
        {"name": "a", "url": "https://svc:pw-1@api.example/v1?api_key=qk-1&page=2&X-Amz-Signature=s%2B1&sig=",
         "headers": {"X-Api-Key": "hk-1", "Authorization": "Bearer ab-1", "Cookie": "sid=ck-1",
                     "Accept": "application/json"}},
        {"name": "b", "url": "https://tok-9@api.example/v1", "bearer_token": "bt-1"},
    ]
    assert _http_probe.secret_values(endpoints) == {
        "pw-1", "qk-1", "s+1", "s%2B1", "hk-1", "Bearer ab-1", "ab-1", "sid=ck-1", "tok-9", "bt-1"}


def test_flags_named_like_credentials_are_not_masked_but_explicit_credentials_are():
    # Masking "1" or "on" would star out every 1 in the result; a credential is never that short.
    endpoints = [{"url": "https://a:pw@h/?auth=1&session=on&token=abcd", "headers": {"X-Auth": "yes"},
                  "bearer_token": "b"}]
    assert _http_probe.secret_values(endpoints) == {"pw", "abcd", "b"}


def test_headers_given_as_text_are_read_before_validation():
    assert _http_probe.secret_values([{"url": "http://h/", "headers": "X-Api-Key=hk-2, Accept=text/plain"}]) == {"hk-2"}
    # Text that is no dict at all: hidden whole rather than guessed at.
    assert _http_probe.secret_values([{"url": "http://h/", "headers": "{not json"}]) == {"{not json"}


@pytest.mark.parametrize("endpoints", [None, "http://h/?token=x", [None, 3, "x"], [{"url": 5, "headers": 7}],
                                       [{"url": "http://[bad/?token=zz"}]])
def test_malformed_arguments_do_not_raise(endpoints):
    # The module reads them before validating them: garbage must not crash it (validation reports it).
    assert isinstance(_http_probe.secret_values(endpoints), set)
