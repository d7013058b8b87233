"""The Redis connection layer: URLs parsed without cutting a password, every wait a deadline, one-line errors."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import threading
import time
from urllib.parse import quote

import pytest
from ansible.module_utils.testing import patch_module_args
from hypothesis import given, settings as hypothesis_settings, strategies as st

from ansible_collections.aiagents.runbooks.plugins.module_utils import _celery, _redis
from ansible_collections.aiagents.runbooks.plugins.module_utils._errors import RunbookError
from ansible_collections.aiagents.runbooks.plugins.modules import celery_workers_info, redis_queue_info
from tests.harness.queue_data import iso_ago, push_plain
from tests.harness.servers import RedisServer, free_port, wait_for_port
from tests.harness.slow import silent_server, trickle_server

# A password a URL parser cuts into pieces: "/" ends the host, "#" starts a fragment, "@" ends the userinfo.
AWKWARD = "Sl/ash#Hash@At-Secret9"
# What redis-py 8 reads while connecting (HELLO 3, CLIENT MAINT_NOTIFICATIONS, CLIENT SETINFO x2, PING),
# answered as a Redis server would.
HANDSHAKE = b"%1\r\n+proto\r\n:3\r\n+OK\r\n+OK\r\n+OK\r\n+PONG\r\n"
MARGIN = 0.6  # seconds a bounded wait may overrun on a loaded machine


def refusal(params) -> str:
    with pytest.raises(RunbookError) as caught:
        _redis.settings(params)
    return str(caught.value)


# ------------------------------------------------------------------ URLs --

@pytest.mark.parametrize(("url", "expected"), [
    (f"redis://:{AWKWARD}@10.0.0.5:6380/2", ("10.0.0.5", 6380, 2, None, AWKWARD, False)),
    (f"rediss://ops:{AWKWARD}@redis.example/0", ("redis.example", None, 0, "ops", AWKWARD, True)),
    (f"redis://:{quote(AWKWARD, safe='')}@h", ("h", None, None, None, AWKWARD, False)),  # encoded: decoded
    ("redis://lonely-secret@h:1/", ("h", 1, None, None, "lonely-secret", False)),  # a lone userinfo is the password
    ("REDIS://[::1]:6379?db=3", ("::1", 6379, 3, None, None, False)),
    ("redis://h:6379/0?db=4", ("h", 6379, 4, None, None, False)),
])
def test_urls_are_read_whole_whatever_the_password_holds(url, expected):
    parsed = _redis.parse_url(url)
    assert tuple(parsed[key] for key in ("host", "port", "db", "username", "password", "tls")) == expected


@pytest.mark.parametrize(("url", "cause"), [
    ("redis://host/abc", "the database after the host must be a number, got 'abc'"),
    ("redis://host/0/extra", "the database after the host must be a number"),
    ("redis://host:99999/0", "port 99999 is out of range (1-65535)"),
    ("redis://host:0/0", "port 0 is out of range"),
    ("redis://host:sixty/0", "the port must be a number, got 'sixty'"),
    ("redis://host:/0", "the port must be a number"),
    ("http://host:6379", "the scheme is not redis:// or rediss:// (got 'http')"),
    ("unix:///run/redis.sock", "the scheme is not redis:// or rediss://"),
    ("host:6379", "the scheme is not redis:// or rediss://"),
    ("redis:///0", "no host"),
    (f"redis://:{AWKWARD}@/0", "no host"),
    ("redis://:pw@h:6379/0#frag", "a '#' follows the host"),
    ("redis://h/0?ssl_cert_reqs=none", "query parameter 'ssl_cert_reqs' is not supported"),
    ("redis://h/0?db=x", "the db query parameter must be a number"),
    ("redis://[::1/0", "an IPv6 address must be written [address]"),
    ("redis://ho st/0", "'ho st' is not a host name or address"),
    ("redis://h/\u00b2", "the database after the host must be a number"),  # "²".isdigit() is True
])
def test_malformed_urls_are_refused_naming_url(url, cause):
    message = refusal({"url": url})
    assert message.startswith("connect to redis: url must be redis://"), message
    assert cause in message, message


@given(st.text(st.characters(blacklist_characters="%", blacklist_categories=("Cs",)), min_size=1))
@hypothesis_settings(max_examples=300, deadline=None)
def test_any_password_is_read_whole_or_refused_without_being_quoted(password):
    url = f"redis://:{password}@127.0.0.1:6379/0"
    try:
        parsed = _redis.parse_url(url)
    except RunbookError as exc:
        assert password not in str(exc)
        return
    assert parsed["password"] == (password or None)
    assert parsed["host"] == "127.0.0.1" and parsed["port"] == 6379


@given(st.text())
@hypothesis_settings(max_examples=300, deadline=None)
def test_any_text_as_url_gives_settings_or_a_runbook_error(text):
    try:
        _redis.settings({"url": text})
    except RunbookError as exc:
        assert str(exc).startswith("connect to redis: ")
    assert _redis.describe({"url": text})  # never raises either


# -------------------------------------------------------------- options --

@pytest.mark.parametrize(("params", "cause"), [
    ({"connect_timeout": 0}, "connect_timeout must be above 0, got 0"),
    ({"connect_timeout": -1.5}, "connect_timeout must be above 0"),
    ({"connect_timeout": float("nan")}, "connect_timeout must be a finite number"),
    ({"connect_timeout": float("inf")}, "connect_timeout must be a finite number"),
    ({"connect_timeout": 301}, "connect_timeout must be at most 300"),
    ({"port": 0}, "port must be at least 1"),
    ({"port": 70000}, "port must be at most 65535"),
    ({"db": -1}, "db must be at least 0"),
    ({"host": ""}, "host must be a host name or address"),
    ({"host": f"redis://:{AWKWARD}@h"}, "host must be a host name or address (a URL goes in url)"),
])
def test_options_out_of_range_are_refused_naming_them(params, cause):
    message = refusal(params)
    assert message.startswith(f"connect to redis: {cause}"), message
    assert "Secret9" not in message


def test_a_missing_unreadable_or_bogus_ca_file_is_named_not_called_unreachable(tmp_path):
    missing = tmp_path / "nope.pem"
    message = refusal({"host": "h", "tls": True, "tls_ca_cert": str(missing)})
    assert message == f"connect to redis at h:6379/0: tls_ca_cert {missing}: no such file"
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("not a certificate\n")
    assert refusal({"url": "rediss://h/1", "tls_ca_cert": str(bogus)}).endswith(
        f"tls_ca_cert {bogus}: not a PEM bundle of CA certificates")
    assert refusal({"host": "h", "tls_ca_cert": str(bogus)}).endswith(
        "given, but the connection does not use TLS (set tls: true or use a rediss:// url)")
    assert "tls_ca_cert" in refusal({"host": "h", "tls": True, "tls_ca_cert": str(tmp_path)})  # a directory


# --------------------------------------------------------- bounded time --

@pytest.mark.parametrize("tls", [False, True])
def test_a_silent_server_costs_one_connect_timeout_not_eleven(tls):
    """redis-py retries a failed connect ten times by default: 11 x the timeout, and as many connections."""
    with silent_server() as server:
        started = time.monotonic()
        with pytest.raises(RunbookError) as caught:
            _redis.connect({"host": "127.0.0.1", "port": server.port, "tls": tls, "connect_timeout": 0.5})
        took = time.monotonic() - started
        assert server.connections == 1
    assert took < 0.5 + MARGIN, took
    assert str(caught.value) == (f"connect to redis at 127.0.0.1:{server.port}/0: timed out "
                                 "(no connection within connect_timeout=0.5 s"
                                 + (", stuck in the TLS handshake: does the server speak TLS?)" if tls else ")"))


def test_a_trickling_server_is_cut_at_the_deadline_not_per_read():
    """Each byte comes well within the timeout; only a deadline on the whole connection stops it."""
    with trickle_server(HANDSHAKE, interval=0.05, read_request=False) as server:  # 37 bytes: about 1.9 s
        started = time.monotonic()
        with pytest.raises(RunbookError, match="timed out"):
            _redis.connect({"host": "127.0.0.1", "port": server.port, "connect_timeout": 0.8})
        assert time.monotonic() - started < 0.8 + MARGIN
    # The same answer, given the time, is a good connection: what stopped it above was the deadline.
    with trickle_server(HANDSHAKE, interval=0.05, read_request=False) as server:
        _redis.connect({"host": "127.0.0.1", "port": server.port, "connect_timeout": 10})


def test_each_reply_after_connecting_is_bounded_as_a_whole():
    reply = HANDSHAKE + b"$100\r\n" + b"x" * 100 + b"\r\n"  # then a GET answer of about 3 s, trickled
    with trickle_server(reply, interval=0.03, read_request=False) as server:
        client = _redis.connect({"host": "127.0.0.1", "port": server.port, "connect_timeout": 1.5})
        started = time.monotonic()
        with pytest.raises(Exception) as caught:
            client.get("key")
        assert time.monotonic() - started < 1.5 + MARGIN
        assert "timed out" in str(_redis.translate(caught.value, "read", "redis"))


def test_deadline_defers_to_an_enclosing_one_and_restores_the_alarm():
    before = signal.getsignal(signal.SIGALRM)
    started = time.monotonic()
    with pytest.raises(_redis.redis_exceptions.TimeoutError, match="no connection within 0.3 s"):
        with _redis.deadline(0.3, "connection"):
            with _redis.deadline(5):
                time.sleep(3)
    assert time.monotonic() - started < 0.3 + MARGIN
    assert signal.getsignal(signal.SIGALRM) == before and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    with _redis.deadline(0.2):
        pass
    time.sleep(0.3)  # an alarm left armed would fire here


class TaskTimeout(Exception):
    pass


def test_deadline_keeps_an_alarm_already_set_like_ansibles_task_timeout():
    def task_timeout(_signum, _frame):
        raise TaskTimeout()

    previous = signal.signal(signal.SIGALRM, task_timeout)
    try:
        signal.setitimer(signal.ITIMER_REAL, 1.0)  # due after ours: re-armed for what is left when ours ends
        started = time.monotonic()
        with _redis.deadline(0.2):
            pass
        with pytest.raises(TaskTimeout):
            time.sleep(3)
        assert 1.0 - 0.1 < time.monotonic() - started < 1.0 + MARGIN
        signal.setitimer(signal.ITIMER_REAL, 0.3)  # due before ours: left alone, and it is the one that fires
        started = time.monotonic()
        with pytest.raises(TaskTimeout):
            with _redis.deadline(5):
                time.sleep(3)
        assert time.monotonic() - started < 0.3 + MARGIN
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_deadline_outside_the_main_thread_leaves_the_socket_timeouts_in_charge():
    done = []
    thread = threading.Thread(target=lambda: done.append(_run_deadline_briefly()))
    thread.start()
    thread.join(5)
    assert done == [True]


def _run_deadline_briefly() -> bool:
    with _redis.deadline(0.01):
        time.sleep(0.05)
    return True


# ----------------------------------------------------- real servers, TLS --

def test_ipv6_hosts_are_hosts_and_a_missing_database_is_named(redis_server):
    assert _redis.settings({"host": "::1"}).describe() == "redis at [::1]:6379/0"
    assert _redis.settings({"host": "[::1]", "port": 7}).describe() == "redis at [::1]:7/0"
    with pytest.raises(RunbookError) as caught:
        _redis.connect({"url": f"redis://127.0.0.1:{redis_server.port}/99999"})
    assert str(caught.value) == f"connect to redis at 127.0.0.1:{redis_server.port}/99999: the server has no database 99999 (db)"


def test_a_password_with_slash_hash_and_at_connects_to_the_right_server(tmp_path):
    server = RedisServer(tmp_path, password=AWKWARD)
    server.start()
    try:
        client = _redis.connect({"url": f"redis://:{AWKWARD}@127.0.0.1:{server.port}/3"})
        client.set("where", "here")
        assert server.client(db=3).get("where") == b"here"
        with pytest.raises(RunbookError) as caught:
            _redis.connect({"url": f"redis://:{AWKWARD}x@127.0.0.1:{server.port}/0"})
        assert str(caught.value).endswith("authentication failed (wrong or missing password)")
        assert "Secret9" not in str(caught.value)
    finally:
        server.kill()


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory):
    """A redis-server speaking only TLS, with a certificate for 127.0.0.1 from a CA of its own."""
    workdir = tmp_path_factory.mktemp("redis-tls")

    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=workdir, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=runbooks-test-ca")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=127.0.0.1")
    (workdir / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")
    port = free_port()
    proc = subprocess.Popen(
        [shutil.which("redis-server") or "/usr/bin/redis-server", "--port", "0", "--tls-port", str(port),
         "--bind", "127.0.0.1", "--tls-cert-file", "server.pem", "--tls-key-file", "server.key",
         "--tls-ca-cert-file", "ca.pem", "--tls-auth-clients", "no", "--save", "", "--appendonly", "no",
         "--dir", str(workdir), "--logfile", str(workdir / "redis.log")],
        cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, proc=proc)
        yield port, str(workdir / "ca.pem")
    finally:
        proc.kill()
        proc.wait()


def test_tls_verifies_the_server_with_the_given_ca(tls_redis):
    port, ca = tls_redis
    assert _redis.connect({"host": "127.0.0.1", "port": port, "tls": True, "tls_ca_cert": ca}).ping() is True
    assert _redis.connect({"url": f"rediss://127.0.0.1:{port}/0", "tls_ca_cert": ca}).ping() is True
    with pytest.raises(RunbookError) as caught:  # the system CAs do not know this one
        _redis.connect({"host": "127.0.0.1", "port": port, "tls": True})
    assert str(caught.value).startswith(f"connect to redis at 127.0.0.1:{port}/0: TLS certificate verification "
                                        "failed (self-signed certificate in certificate chain")


def test_tls_against_a_plain_server_says_where_it_stuck(redis_server):
    """A plain Redis reads the TLS hello as the start of a command line and waits for the rest."""
    with pytest.raises(RunbookError) as caught:
        _redis.connect({"host": "127.0.0.1", "port": redis_server.port, "tls": True, "connect_timeout": 1})
    assert str(caught.value).endswith("stuck in the TLS handshake: does the server speak TLS?)"), str(caught.value)


# ----------------------------------------------------- the modules' own --

def module_result(capsys, main, args):
    with patch_module_args(args), pytest.raises(SystemExit):
        main()
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(("thresholds", "cause"), [
    ({"depth_high": -1}, "thresholds.depth_high must be at least 0, got -1"),
    ({"stale_seconds": "nan"}, "thresholds.stale_seconds must be a finite number"),
    ({"stale_seconds": "inf"}, "thresholds.stale_seconds must be a finite number"),
    ({"stale_seconds": -60}, "thresholds.stale_seconds must be at least 0"),
    ({"flood_share": 1.5}, "thresholds.flood_share must be at most 1"),
    ({"flood_share": "-inf"}, "thresholds.flood_share must be a finite number"),
])
def test_queue_info_refuses_thresholds_out_of_range(capsys, thresholds, cause):
    result = module_result(capsys, redis_queue_info.main, {"host": "127.0.0.1", "port": 1, "thresholds": thresholds})
    assert result["failed"] is True
    assert result["msg"].startswith(f"read queue 'enhancement_queue': {cause}"), result["msg"]


@pytest.mark.parametrize(("thresholds", "kind"), [(5, "int"), ([1], "list"), (1.5, "float")])
def test_queue_info_refuses_thresholds_that_are_not_a_dict_without_crashing(capsys, thresholds, kind):
    result = module_result(capsys, redis_queue_info.main, {"port": 1, "thresholds": thresholds})
    assert result["msg"] == f"option thresholds must be a dictionary, got {kind}"


def test_queue_info_refuses_nonsense_visibility_timeout_and_connect_timeout(capsys):
    result = module_result(capsys, redis_queue_info.main, {"port": 1, "visibility_timeout": 0})
    assert result["msg"] == "read queue 'enhancement_queue': visibility_timeout must be above 0, got 0.0"
    result = module_result(capsys, redis_queue_info.main, {"url": f"redis://:{AWKWARD}@h/0", "connect_timeout": "inf"})
    assert result["msg"] == "connect to redis: connect_timeout must be a finite number, got inf"


def test_queue_info_stale_seconds_zero_means_zero_not_the_default(redis_server, capsys):
    push_plain(redis_server.client(), [("T-1", "acme-corp", iso_ago(10))])
    result = module_result(capsys, redis_queue_info.main, {"port": redis_server.port,
                                                           "thresholds": {"stale_seconds": 0}})
    assert (result["older_than"]["seconds"], result["older_than"]["count"]) == (0, 1)


@pytest.mark.parametrize(("args", "cause"), [
    ({"timeout": 0}, "timeout must be above 0, got 0.0"),
    ({"timeout": "nan"}, "timeout must be a finite number"),
    ({"timeout": 301}, "timeout must be at most 300"),
    ({"confirm_timeout": -1}, "confirm_timeout must be at least 0"),
    ({"confirm_timeout": "inf"}, "confirm_timeout must be a finite number"),
    ({"long_task_seconds": "nan"}, "long_task_seconds must be a finite number"),
])
def test_celery_workers_info_refuses_waits_out_of_range(capsys, args, cause):
    result = module_result(capsys, celery_workers_info.main, {"port": 1, **args})
    assert result["msg"].startswith(f"inspect celery workers via redis at 127.0.0.1:1/0: {cause}"), result["msg"]


def test_celery_broker_url_keeps_an_awkward_password_whole():
    from kombu.utils.url import url_to_parts

    found = _redis.settings({"url": f"rediss://ops:{AWKWARD}@[::1]:6380/2"})
    parts = url_to_parts(_celery.broker_url(found))
    assert (parts.scheme, parts.hostname, parts.port, parts.username, parts.password, parts.path) == \
        ("rediss", "::1", 6380, "ops", AWKWARD, "2")


def test_celery_inspection_is_bounded_as_a_whole(redis_server, monkeypatch):
    """Whatever kombu does, inspect_workers returns within its budget."""
    found = _redis.settings({"port": redis_server.port, "connect_timeout": 0.5})

    class Stuck:
        def __init__(self, *args, **kwargs):
            self.conf = type("Conf", (), {})()

        @property
        def control(self):
            time.sleep(30)

        def close(self):
            pass

    monkeypatch.setattr(_celery, "Celery", Stuck)
    started = time.monotonic()
    with pytest.raises(_redis.redis_exceptions.TimeoutError):
        _celery.inspect_workers(found, 0.2, 0.3)
    assert time.monotonic() - started < _celery.inspect_budget(0.5, 0.2, 0.3) + MARGIN
