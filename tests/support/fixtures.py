"""Fixtures the integration, security, fault and browser suites share (a pytest plugin: see
tests/conftest.py).

A module that needs something else (a double with short-lived tokens, one per test) defines
its own fixture of the same name, which wins for that module.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.support.cognito_double import CognitoDouble, running_double
from tests.support.stack import Upstream, recording_upstream

__all__ = ["double", "upstream"]


@pytest.fixture(scope="module")
def double() -> Iterator[CognitoDouble]:
    """The strict Cognito double, one per test module (tests create their own pools)."""
    with running_double() as d:
        yield d


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    """A recording upstream app, fresh for each test."""
    async with recording_upstream() as up:
        yield up
