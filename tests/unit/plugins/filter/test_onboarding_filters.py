"""The onboarding input rules and the secret comparison, as the role applies them."""
from __future__ import annotations

import hashlib

import pytest

from ansible_collections.aiagents.runbooks.plugins.filter.runbooks import (onboarding_input_errors, secret_matches,
                                                                           tenant_id_error)

GOOD = {"tenant_id": "new-msp-01", "name": "New MSP Ltd", "sdp_url": "https://new-msp.sdpondemand.example",
        "sdp_api_key": "k" * 40, "webhook_secret": "s" * 64}


def test_good_inputs_pass():
    assert onboarding_input_errors(GOOD) == []


@pytest.mark.parametrize("tenant_id, fragment", [
    ("Acme-Corp", "lowercase letters, digits and hyphens"),
    ("a" * 51, "51 characters long; at most 50"),
    ("acme'; --", "not valid"),
    ("-acme", "starting and ending with a letter or digit"),
    ("acme_corp", "not valid"),
    ("", "tenant_id is required"),
])
def test_bad_tenant_ids_are_refused_with_one_clear_message(tenant_id, fragment):
    errors = onboarding_input_errors({**GOOD, "tenant_id": tenant_id})
    assert len(errors) == 1 and fragment in errors[0]


def test_fifty_characters_is_the_limit():
    assert tenant_id_error("a" * 50) is None


@pytest.mark.parametrize("url, fragment", [
    ("http://sdp.example.com", "must use https"),
    ("ftp://sdp.example.com", "not a plain https URL"),
    ("https://user:pw@sdp.example.com", "not a plain https URL"),
    ("https://", "not a plain https URL"),
    ("", "sdp_url is required"),
])
def test_sdp_url_must_be_plain_https(url, fragment):
    errors = onboarding_input_errors({**GOOD, "sdp_url": url})
    assert len(errors) == 1 and fragment in errors[0]


def test_http_only_on_loopback_and_only_when_allowed():
    loopback = {**GOOD, "sdp_url": "http://127.0.0.1:8081"}
    assert onboarding_input_errors(loopback, allow_http_loopback=True) == []
    assert "must use https" in onboarding_input_errors(loopback)[0]
    remote = {**GOOD, "sdp_url": "http://10.0.0.5:8081"}
    assert "must use https" in onboarding_input_errors(remote, allow_http_loopback=True)[0]


def test_short_webhook_secret_is_refused_without_quoting_it():
    secret = "0123456789abcdef"
    errors = onboarding_input_errors({**GOOD, "webhook_secret": secret})
    assert errors == ["the webhook secret is 16 characters long; at least 32 are required (openssl rand -hex 32)"]
    assert secret not in errors[0]


def test_missing_secrets_say_where_to_give_them():
    errors = onboarding_input_errors({**GOOD, "sdp_api_key": "", "webhook_secret": None})
    assert len(errors) == 2 and all("vault file" in error for error in errors)


def test_several_bad_inputs_each_get_their_message():
    errors = onboarding_input_errors({"tenant_id": "X", "name": "", "sdp_url": "http://x.example",
                                      "sdp_api_key": "k", "webhook_secret": "short"})
    assert len(errors) == 4


CLOUD = {"tenant_id": "globex-eu", "name": "Globex Europe", "sdp_url": "https://sdpondemand.manageengine.eu",
         "sdp_edition": "cloud", "sdp_portal": "globexit", "sdp_accounts_url": "https://accounts.zoho.eu",
         "sdp_client_id": "1000.CLIENT", "sdp_client_secret": "c" * 42, "sdp_refresh_token": "1000." + "r" * 60,
         "webhook_secret": "s" * 64}


def test_a_cloud_tenant_needs_its_oauth_client_not_a_technician_key():
    assert onboarding_input_errors(CLOUD) == []
    missing = onboarding_input_errors({**CLOUD, "sdp_client_secret": "", "sdp_refresh_token": None})
    assert missing == ["the SDP Cloud client secret is missing: give it from a vault file (-e @tenant.vault.yml)",
                       "the SDP Cloud refresh token is missing: give it from a vault file (-e @tenant.vault.yml)"]
    # On premises the technician key is what is missing, never the Cloud client.
    assert onboarding_input_errors({**GOOD, "sdp_api_key": ""})[0].startswith("the SDP API key is missing")


@pytest.mark.parametrize("change, fragment", [
    ({"sdp_edition": "saas"}, "sdp_edition 'saas' is not one of on_premises, cloud"),
    ({"sdp_portal": ""}, "must be the Cloud portal's name"),
    ({"sdp_portal": "app/globexit"}, "must be the Cloud portal's name"),
    ({"sdp_accounts_url": "http://accounts.zoho.eu"}, "sdp_accounts_url 'http://accounts.zoho.eu' must use https"),
    ({"sdp_accounts_url": ""}, "sdp_accounts_url is required"),
    ({"sdp_refresh_token": "1000. token"}, "the SDP Cloud refresh token contains whitespace"),
])
def test_cloud_settings_are_checked_with_one_clear_message_each(change, fragment):
    errors = onboarding_input_errors({**CLOUD, **change})
    assert len(errors) == 1 and fragment in errors[0], errors
    assert all(CLOUD["sdp_client_secret"] not in error for error in errors)


def _stat(key, content):
    return {"item": key, "stat": {"exists": True, "checksum": hashlib.sha256(content.encode()).hexdigest()}}


def test_secret_matches_with_or_without_final_newline():
    data = {"api_key": "abc", "webhook_secret": "x" * 32}
    assert secret_matches([_stat("api_key", "abc\n"), _stat("webhook_secret", "x" * 32)], data)
    assert not secret_matches([_stat("api_key", "abd"), _stat("webhook_secret", "x" * 32)], data)
    assert not secret_matches([_stat("api_key", "abc")], data)  # a key file is missing
    assert not secret_matches([{"item": "api_key", "stat": {"exists": False}}], {"api_key": "abc"})
    assert not secret_matches([_stat("api_key", "abc")], {})
