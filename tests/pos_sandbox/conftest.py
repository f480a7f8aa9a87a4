"""Fixtures for the sandbox tests: one sandbox per test module (its N customers and SEED), reset per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from pos_sandbox import SandboxServer


@pytest.fixture(scope="module")
def sandbox(request: pytest.FixtureRequest) -> Iterator[SandboxServer]:
    """The module's sandbox over real HTTP: `N` customers per vendor from seed `SEED` (module globals)."""
    with SandboxServer(customers=request.module.N, seed=request.module.SEED) as server:
        yield server


@pytest.fixture
def sb(sandbox: SandboxServer) -> Iterator[SandboxServer]:
    """The module's sandbox, with every change and fault undone after the test."""
    sandbox.reset()
    yield sandbox
    sandbox.reset()


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session
