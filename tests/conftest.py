"""Fixtures shared by every test: real servers and real Ansible runs."""

from __future__ import annotations

import uuid

import pytest

from tests.harness import ansible as ansible_harness
from tests.harness.servers import PostgresServer, RedisServer, throwaway


@pytest.fixture
def redis_server():
    """A fresh redis-server of our own on a free loopback port."""
    with throwaway(RedisServer, "redis") as server:
        yield server


@pytest.fixture(scope="session")
def postgres_cluster():
    """One PostgreSQL cluster for the session (initdb costs seconds)."""
    with throwaway(PostgresServer, "postgres", end="stop") as server:
        yield server


@pytest.fixture
def postgres_db(postgres_cluster):
    """A fresh, empty database on the session cluster: (server, dbname)."""
    name = "t_" + uuid.uuid4().hex[:12]
    postgres_cluster.create_database(name)
    return postgres_cluster, name


@pytest.fixture
def postgres_server():
    """A PostgreSQL server of this test's own, for tests that stop or kill it."""
    with throwaway(PostgresServer, "postgres") as server:
        yield server


@pytest.fixture
def run_module():
    """run_module(name, args, check=False, diff=False) -> Run, through the `ansible` command."""
    return ansible_harness.run_module


@pytest.fixture
def run_playbook():
    """run_playbook(path, extravars, tags=..., check=False, diff=False) -> Run, through `ansible-playbook`."""
    return ansible_harness.run_playbook
