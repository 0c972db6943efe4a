"""GATE_SERVER_EVENT_LOOP: one loop choice for serve, demo and the test stack."""

from __future__ import annotations

import asyncio

import pytest

from proxy import eventloop
from proxy.settings import ConfigError, load_settings

from .test_settings import VALID_ENV


def test_auto_is_uvloop_where_it_installs() -> None:
    pytest.importorskip("uvloop")  # a declared dependency on Linux: present in this venv
    assert eventloop.resolve("auto") == "uvloop"
    assert eventloop.resolve("uvloop") == "uvloop"


def test_asyncio_is_the_plain_loop() -> None:
    assert eventloop.resolve("asyncio") == "asyncio"
    assert eventloop.loop_factory("asyncio") is asyncio.new_event_loop


def test_auto_falls_back_when_uvloop_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(eventloop, "_uvloop_factory", lambda: None)
    assert eventloop.resolve("auto") == "asyncio"
    with pytest.raises(eventloop.EventLoopUnavailable, match="uvloop is not installed"):
        eventloop.resolve("uvloop")


def test_missing_uvloop_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(eventloop, "_uvloop_factory", lambda: None)
    for key, value in (VALID_ENV | {"GATE_SERVER_EVENT_LOOP": "uvloop"}).items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert any(line.startswith("GATE_SERVER_EVENT_LOOP") for line in err.value.lines)


def test_unknown_choice_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in (VALID_ENV | {"GATE_SERVER_EVENT_LOOP": "trio"}).items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert any(line.startswith("GATE_SERVER_EVENT_LOOP") for line in err.value.lines)


@pytest.mark.parametrize("choice", ["auto", "asyncio"])
def test_run_uses_the_chosen_loop(choice: str) -> None:
    async def kind() -> str:
        return type(asyncio.get_running_loop()).__module__

    module = eventloop.run(kind(), choice)
    assert ("uvloop" in module) == (eventloop.resolve(choice) == "uvloop")


async def test_the_test_stack_runs_on_the_same_choice() -> None:
    # tests/conftest.py hands pytest-asyncio the loop serve would pick (default auto).
    expected = eventloop.resolve(eventloop.choice_from_env())
    module = type(asyncio.get_running_loop()).__module__
    assert ("uvloop" in module) == (expected == "uvloop")
