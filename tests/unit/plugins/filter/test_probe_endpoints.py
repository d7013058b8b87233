"""Which credential each API is probed with, before and after a key rotation."""

from __future__ import annotations

from ansible_collections.aiagents.runbooks.plugins.filter.runbooks import probe_endpoints

APIS = [
    {"name": "ServiceDesk Plus", "url": "http://127.0.0.1:18091", "secret": "sdp-credentials",
     "sdp": {"edition": "on_premises", "secret_dir": "/run/secrets/sdp"}},
    {"name": "OpenAI", "url": "http://127.0.0.1:18092/v1", "openai": {}, "secret": "openai-credentials",
     "bearer_token_file": "/run/secrets/openai/api_key"},
    {"name": "Cloud", "url": "https://sdpondemand.manageengine.com", "secret": "tenant-acme-sdp",
     "sdp": {"edition": "cloud", "portal": "acme", "secret_dir": "/run/secrets/acme"}},
]


def test_without_a_rotation_each_api_keeps_its_own_credential_and_loses_only_the_secret_name():
    endpoints = probe_endpoints(APIS)
    assert [sorted(endpoint) for endpoint in endpoints] == [
        ["name", "sdp", "url"], ["bearer_token_file", "name", "openai", "url"], ["name", "sdp", "url"]]
    assert endpoints[1]["bearer_token_file"] == "/run/secrets/openai/api_key"
    assert "authtoken" not in endpoints[0]["sdp"]
    assert "secret" in APIS[0]  # the inventory's list is not changed


def test_a_rotated_bearer_api_is_probed_with_the_new_key_not_the_stale_file():
    endpoints = probe_endpoints(APIS, {"openai-credentials": "sk-new"})
    assert endpoints[1]["bearer_token"] == "sk-new"
    assert "bearer_token_file" not in endpoints[1]
    assert endpoints[0] == probe_endpoints(APIS)[0]  # the others as they were


def test_a_rotated_on_premises_sdp_key_is_the_authtoken_which_wins_over_its_secret_dir():
    endpoints = probe_endpoints(APIS, {"sdp-credentials": "new-technician-key"})
    assert endpoints[0]["sdp"] == {"edition": "on_premises", "secret_dir": "/run/secrets/sdp",
                                   "authtoken": "new-technician-key"}
    assert APIS[0]["sdp"] == {"edition": "on_premises", "secret_dir": "/run/secrets/sdp"}


def test_a_cloud_portal_is_not_given_an_api_key_as_its_oauth_token():
    endpoints = probe_endpoints(APIS, {"tenant-acme-sdp": "an-api-key"})
    assert endpoints[2] == {key: value for key, value in APIS[2].items() if key != "secret"}
    assert "bearer_token" not in endpoints[2]


def test_nothing_to_probe_is_an_empty_list():
    assert probe_endpoints(None) == [] and probe_endpoints([], {"x": "y"}) == []
