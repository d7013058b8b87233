"""ServiceDesk Plus v3, both editions: the stand-in answers as ManageEngine and Zoho document,
and http_probe_info speaks to each edition the real way.

Documents followed (each contract case names its own):
  [OP]    https://www.manageengine.com/products/service-desk/sdpop-v3-api/  (on-premises v3 API)
  [CODES] https://manageengine.com/products/service-desk/sdpop-v3-api/getting-started/common-error-code.html
  [OD]    https://www.manageengine.com/products/service-desk/sdpod-v3-api/getting-started/oauth-2.0.html
  [EXP]   https://www.manageengine.com/products/service-desk-msp/sdpmspcloud-v3-api/getting-started/oauth-2.0.html
          ("Token Expiry": access tokens expire, expires_in says when; a refresh token renews them)
  [REQ]   https://www.manageengine.com/products/service-desk/sdpop-v3-api/requests/request.html
          (Add request: POST /api/v3/requests, "Mandatory Fields :- subject"; Edit request: PUT /requests/{id};
          lookup fields such as priority and status are objects by name)
  [LIST]  https://www.manageengine.com/products/service-desk/sdpod-v3-api/getting-started/input-data.html and
          .../getting-started/search-criteria.html (list_info: row_count at most 100, start_index, sort_order,
          search_criteria with field, condition, value or values, children, logical_operator)
  [NOTE]  .../sdpod-v3-api/requests/request_note.html ("Add request note"): the documents and the clients
          built on them differ on the wrapper - "request_note" in some, "note" in others (PowerShell
          Gallery PSSDPAPI's New-SDPRequestNote, linking that page) - so both are accepted
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest

from ansible_collections.aiagents.runbooks.plugins.module_utils._redact import forms
from tests.harness.standins import running, secrets_dir

MODULE = "aiagents.runbooks.http_probe_info"
V3 = "application/vnd.manageengine.sdp.v3+json"
KEY = "sdp-onprem-key-51c0e7a9d3f2"
CLIENT_ID = "1000.CLIENTGLOBEX0001"
CLIENT_SECRET = "client-secret-8e2d91b7a4c6"
REFRESH = "1000.refresh.6f3a9c2e7b1d4a58"
PORTAL = "globexit"


@pytest.fixture(scope="module")
def secrets(tmp_path_factory):
    return secrets_dir(tmp_path_factory, {
        "tenant-acme-corp-sdp": {"api_key": KEY},
        "tenant-globex-sdp": {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "refresh_token": REFRESH,
                              "portal": PORTAL}})


@pytest.fixture(scope="module")
def sdp(secrets):
    with running("sdp", secrets) as standin:
        yield standin


@pytest.fixture(autouse=True)
def healed(sdp):
    sdp.heal()
    sdp.control("DELETE", "/tokens")
    yield
    sdp.heal()


def call(url, method="GET", headers=None, form=None):
    """(status, JSON answer, Content-Type) of one request; any status is an answer."""
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read()), response.headers.get("Content-Type")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null"), error.headers.get("Content-Type")


def access_token(sdp, refresh=REFRESH, client_secret=CLIENT_SECRET):
    return call(f"{sdp.url}/oauth/v2/token", "POST", form={
        "refresh_token": refresh, "client_id": CLIENT_ID, "client_secret": client_secret,
        "grant_type": "refresh_token"})[1]


def code(answer):
    return answer["response_status"]["messages"][0]["status_code"]


# ------------------------------------------------------------- the contract --

def test_on_premises_reads_requests_with_the_authtoken_header(sdp):
    # [OP] requests resource, authtoken header, Accept v3; [CODES] 2000 success.
    status, answer, kind = call(f"{sdp.url}/api/v3/requests/1001", headers={"authtoken": KEY, "Accept": V3})
    assert status == 200 and answer["request"]["id"] == "1001"
    assert answer["response_status"] == {"status_code": 2000, "status": "success"}
    assert kind.startswith(V3)
    # A list read answers a list of response_status, with list_info; input_data in the query string.
    query = urllib.parse.urlencode({"input_data": json.dumps({"list_info": {"row_count": 1}})})
    status, answer, _kind = call(f"{sdp.url}/api/v3/requests?{query}", headers={"authtoken": KEY, "Accept": V3})
    assert status == 200 and len(answer["requests"]) == 1 and answer["list_info"]["row_count"] == 1
    assert answer["response_status"] == [{"status_code": 2000, "status": "success"}]


def test_the_old_tickets_path_and_bearer_login_are_not_the_v3_api(sdp):
    # [OP] there is no `tickets` resource: 404, 4007 "Invalid URL or Resource not found" [CODES].
    status, answer, _kind = call(f"{sdp.url}/api/v3/tickets/1001", headers={"authtoken": KEY, "Accept": V3})
    assert (status, code(answer)) == (404, 4007)
    # [OP] on premises logs in with authtoken; a Bearer header is no login: 401, 4022 "Invalid API key" [CODES].
    status, answer, _kind = call(f"{sdp.url}/api/v3/requests/1001", headers={"Authorization": f"Bearer {KEY}"})
    assert (status, code(answer)) == (401, 4022)


def test_writes_take_json_in_the_input_data_form_field(sdp):
    # [OP] "Add Note": POST .../requests/{id}/notes, input_data={"request_note": {...}}.
    url = f"{sdp.url}/api/v3/requests/2002/notes"
    headers = {"authtoken": KEY, "Accept": V3}
    note = {"request_note": {"description": "AI summary: restart the spooler", "show_to_requester": False}}
    status, answer, _kind = call(url, "POST", headers, form={"input_data": json.dumps(note)})
    assert status == 201 and answer["request_note"]["description"] == "AI summary: restart the spooler"
    assert answer["response_status"]["status_code"] == 2000
    # A JSON body is not the v3 API's input: the mandatory field is missing (400, 4012) [CODES].
    request = urllib.request.Request(url, data=json.dumps(note).encode(), method="POST",
                                     headers={**headers, "Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 400 and code(json.loads(refused.value.read())) == 4012
    status, answer, _kind = call(url, headers=headers)
    assert [item["description"] for item in answer["request_notes"]] == ["AI summary: restart the spooler"]


def test_an_accept_header_that_allows_no_json_is_refused(sdp):
    status, _answer, _kind = call(f"{sdp.url}/api/v3/requests/1", headers={"authtoken": KEY, "Accept": "text/html"})
    assert status == 406


def test_rate_limit_and_forbidden_carry_the_documented_codes(sdp):
    # [CODES] 4015 with HTTP 429; 4002 with HTTP 403. No Retry-After is documented: none is sent.
    for status, expected in ((429, 4015), (403, 4002)):
        sdp.fault(status=status)
        got, answer, _kind = call(f"{sdp.url}/api/v3/requests", headers={"authtoken": KEY, "Accept": V3})
        assert (got, code(answer)) == (status, expected)


def test_cloud_carries_the_portal_and_logs_in_with_a_zoho_oauthtoken(sdp):
    # [OD] the accounts server's /oauth/v2/token renews an access token from a refresh token; it expires.
    token = access_token(sdp)
    assert token["expires_in"] == 3600 and token["token_type"] == "Bearer" and token["access_token"].startswith("1000.")
    url = f"{sdp.url}/app/{PORTAL}/api/v3/requests/3003"
    status, answer, _kind = call(url, headers={"Authorization": f"Zoho-oauthtoken {token['access_token']}", "Accept": V3})
    assert status == 200 and answer["request"]["id"] == "3003"
    # The same token without the portal prefix, or as a Bearer token, is no Cloud login.
    assert call(url, headers={"Authorization": f"Bearer {token['access_token']}"})[0] == 401
    # [EXP] an expired access token is refused; a refreshed one works again.
    sdp.control("POST", "/tokens/expire")
    assert call(url, headers={"Authorization": f"Zoho-oauthtoken {token['access_token']}"})[0] == 401
    fresh = access_token(sdp)["access_token"]
    assert call(url, headers={"Authorization": f"Zoho-oauthtoken {fresh}"})[0] == 200


def test_the_accounts_server_answers_unknown_credentials_with_an_error_field(sdp):
    # The documents are silent on the failure's shape; Zoho's accounts server answers HTTP 200 with an
    # `error` field, so the collection must read the field, not the status (it handles both).
    assert access_token(sdp, refresh="1000.not.a.token") == {"error": "invalid_code"}
    assert access_token(sdp, client_secret="wrong") == {"error": "invalid_client"}


# --------------------------------------------------------- the collection --

def probe(run_module, endpoint, **args):
    run = run_module(MODULE, {"endpoints": [{"name": "ServiceDesk Plus (globex)", **endpoint}], **args})
    assert run.rc == 0, run.stdout
    return run


def test_on_premises_probe_uses_the_requests_resource_and_authtoken(run_module, sdp):
    run = probe(run_module, {"url": sdp.url, "sdp": {"authtoken": KEY}})
    result = run.result["probes"][0]
    assert (result["status"], result["classification"]) == (200, "ok")
    assert result["url"].startswith(f"{sdp.url}/api/v3/requests?input_data=")
    wrong = probe(run_module, {"url": sdp.url, "sdp": {"authtoken": "not-the-technician-key"}})
    assert [f["id"] for f in wrong.result["findings"]] == ["api_auth_invalid"]


def test_cloud_probe_obtains_a_token_when_it_holds_none(run_module, sdp, secrets):
    cloud = {"edition": "cloud", "accounts_url": sdp.url, "secret_dir": str(secrets / "tenant-globex-sdp")}
    run = probe(run_module, {"url": sdp.url, "sdp": cloud})
    result = run.result["probes"][0]
    assert (result["status"], result["classification"], result["token_refreshed"]) == (200, "ok", True)
    assert result["url"].startswith(f"{sdp.url}/app/{PORTAL}/api/v3/requests?")
    assert run.result["findings"] == []


def test_an_expired_stored_token_is_its_own_finding_refresh_never_rotate(run_module, sdp, secrets):
    stored = access_token(sdp)["access_token"]
    sdp.control("POST", "/tokens/expire")
    run = probe(run_module, {"url": sdp.url, "sdp": {
        "edition": "cloud", "accounts_url": sdp.url, "access_token": stored,
        "secret_dir": str(secrets / "tenant-globex-sdp")}})
    result = run.result["probes"][0]
    assert (result["status"], result["classification"], result["token_expired"]) == (200, "token_expired", True)
    [found] = run.result["findings"]
    assert (found["id"], found["severity"]) == ("sdp_token_expired", "medium")
    assert "refresh" in found["resolution"] and "nothing to rotate" in found["resolution"]
    assert stored not in run.stdout
    # A stored token that still works: no refresh, no finding.
    good = access_token(sdp)["access_token"]
    cloud = {"edition": "cloud", "accounts_url": sdp.url, "access_token": good, "portal": PORTAL}
    run = probe(run_module, {"url": sdp.url, "sdp": cloud})
    assert run.result["probes"][0]["token_refreshed"] is False and run.result["findings"] == []


def test_refused_cloud_credentials_are_auth_invalid_and_say_why(run_module, sdp):
    run = probe(run_module, {"url": sdp.url, "sdp": {
        "edition": "cloud", "accounts_url": sdp.url, "portal": PORTAL, "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET, "refresh_token": "1000.revoked.refresh"}})
    [found] = run.result["findings"]
    assert found["id"] == "api_auth_invalid"
    assert "refused the refresh token (invalid_code)" in found["summary"] and "re-authorise" in found["resolution"]


def test_no_cloud_credential_appears_in_any_output(run_module, sdp, secrets):
    stored = access_token(sdp)["access_token"]
    sdp.control("POST", "/tokens/expire")
    runs = [run_module(MODULE, {"endpoints": [{"name": "SDP", "url": sdp.url, "sdp": {
        "edition": "cloud", "accounts_url": sdp.url, "access_token": stored, **extra}}]}, verbosity=3)
        for extra in ({"secret_dir": str(secrets / "tenant-globex-sdp")},
                      {"portal": PORTAL, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                       "refresh_token": "1000.revoked.refresh"})]
    assert [run.result["probes"][0]["classification"] for run in runs] == ["token_expired", "refresh_refused"]
    every_form = {form for secret in (stored, CLIENT_SECRET, REFRESH, "1000.revoked.refresh")
                  for form in forms(secret) if len(form) >= 4}
    for run in runs:
        text = run.stdout + json.dumps(run.results)
        assert [form for form in every_form if form in text] == []


@pytest.mark.parametrize(("sdp_options", "message"), [
    ({}, "probe SDP: sdp.authtoken (or an api_key file in sdp.secret_dir) is required on premises"),
    ({"edition": "cloud", "access_token": "t0k3n-abc"},
     "probe SDP: sdp.portal is required for ServiceDesk Plus Cloud (the <portal> of /app/<portal>/)"),
    ({"edition": "cloud", "portal": "p", "client_id": "c"},
     "probe SDP: sdp: Cloud needs an access_token, or client_id, client_secret and refresh_token to obtain one"),
    ({"edition": "cloud", "portal": "a/b", "access_token": "t0k3n-abc"},
     "probe SDP: sdp.portal must be the portal's name, not a path"),
])
def test_incomplete_settings_are_refused_naming_the_option(run_module, sdp_options, message):
    run = run_module(MODULE, {"endpoints": [{"name": "SDP", "url": "http://127.0.0.1:9", "sdp": sdp_options}]})
    assert run.rc != 0 and run.result["msg"] == message


# --------------------------------------------------- requests: add, edit, find --

def test_a_request_is_added_with_a_subject_and_edited_by_id(sdp):
    # [REQ] POST /api/v3/requests with input_data {"request": {...}}; subject is mandatory (400, 4012 [CODES]).
    url, headers = f"{sdp.url}/api/v3/requests", {"authtoken": KEY, "Accept": V3}
    status, answer, _kind = call(url, "POST", headers, form={"input_data": json.dumps({"request": {
        "subject": "QueueDepthHigh on the platform", "description": "<pre>depth 340</pre>",
        "priority": {"name": "High"}}})})
    assert status in (200, 201) and answer["response_status"]["status_code"] == 2000
    created = answer["request"]
    assert created["subject"] == "QueueDepthHigh on the platform" and created["priority"] == {"name": "High"}
    assert created["status"] == {"name": "Open"}
    status, answer, _kind = call(url, "POST", headers, form={"input_data": json.dumps({"request": {
        "description": "no subject"}})})
    assert (status, code(answer)) == (400, 4012) and answer["response_status"]["messages"][0]["field"] == "subject"
    # [REQ] PUT /requests/{id} changes the fields given, and only those.
    status, answer, _kind = call(f"{url}/{created['id']}", "PUT", headers, form={"input_data": json.dumps({
        "request": {"status": {"name": "Resolved"}}})})
    assert status == 200 and answer["request"]["status"] == {"name": "Resolved"}
    assert answer["request"]["subject"] == "QueueDepthHigh on the platform"


def test_a_list_read_finds_requests_by_search_criteria(sdp):
    # [LIST] search_criteria: one criterion, or several joined by logical_operator; row_count at most 100.
    url, headers = f"{sdp.url}/api/v3/requests", {"authtoken": KEY, "Accept": V3}
    marker = f"[alert {uuid.uuid4().hex[:12]}]"
    for subject in (f"{marker} WorkerDown", "Printer offline again"):
        call(url, "POST", headers, form={"input_data": json.dumps({"request": {"subject": subject}})})

    def search(list_info):
        query = urllib.parse.urlencode({"input_data": json.dumps({"list_info": list_info})})
        return call(f"{url}?{query}", headers=headers)

    status, answer, _kind = search({"row_count": 100, "search_criteria": {
        "field": "subject", "condition": "contains", "value": marker}})
    assert status == 200 and [r["subject"] for r in answer["requests"]] == [f"{marker} WorkerDown"]
    _status, answer, _kind = search({"row_count": 100, "search_criteria": [
        {"field": "subject", "condition": "contains", "value": marker},
        {"field": "status.name", "condition": "is", "values": ["Open"], "logical_operator": "and"}]})
    assert len(answer["requests"]) == 1
    _status, answer, _kind = search({"row_count": 100, "search_criteria": [
        {"field": "subject", "condition": "contains", "value": marker},
        {"field": "status.name", "condition": "is", "value": "Closed", "logical_operator": "and"}]})
    assert answer["requests"] == []
    status, answer, _kind = search({"row_count": "many"})
    assert (status, code(answer)) == (400, 4012)


def test_a_note_is_taken_wrapped_either_way_and_answered_alike(sdp):
    # [NOTE] request_note (Cloud, older on-premises) or note (newer on-premises builds); description is mandatory.
    url, headers = f"{sdp.url}/api/v3/requests/4004/notes", {"authtoken": KEY, "Accept": V3}
    for wrapper in ("note", "request_note"):
        status, answer, _kind = call(url, "POST", headers, form={"input_data": json.dumps({
            wrapper: {"description": f"via {wrapper}"}})})
        assert status == 201 and answer[wrapper]["description"] == f"via {wrapper}"
    status, answer, _kind = call(url, "POST", headers, form={"input_data": json.dumps({"note": {}})})
    assert (status, code(answer)) == (400, 4012)
