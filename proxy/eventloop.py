"""Which asyncio event loop the proxy runs on: uvloop where it installs, the plain loop otherwise.

One choice for every entry point (``serve``, ``demo``, the test stack), set by
``GATE_SERVER_EVENT_LOOP``:

- ``auto`` (default): uvloop if it can be imported (Linux, macOS), else asyncio's own loop;
- ``uvloop``: uvloop or refuse to start (a missing uvloop is a deployment error worth seeing);
- ``asyncio``: asyncio's own loop (to rule the loop out when chasing a bug).

uvloop's loop answers the same proxy at about 1.3x the requests per second of the default loop
on this code base (issue 12): the transports, the selector and the timer heap are in C.
"""

from __future__ import annotations

import asyncio
import importlib
import os
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

__all__ = ["EventLoopChoice", "EventLoopUnavailable", "loop_factory", "resolve", "run"]

EventLoopChoice = Literal["auto", "uvloop", "asyncio"]
SETTING = "GATE_SERVER_EVENT_LOOP"
_T = TypeVar("_T")


class EventLoopUnavailable(ValueError):
    """``uvloop`` was asked for but cannot be imported (a ValueError: settings report it)."""


def _uvloop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        module = importlib.import_module("uvloop")
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = module.new_event_loop
    return factory


def resolve(choice: str) -> Literal["uvloop", "asyncio"]:
    """The loop ``choice`` means on this machine."""
    if choice == "asyncio":
        return "asyncio"
    if choice not in ("auto", "uvloop"):
        raise EventLoopUnavailable(f"expected auto, uvloop or asyncio, got {choice!r}")
    if _uvloop_factory() is not None:
        return "uvloop"
    if choice == "uvloop":
        raise EventLoopUnavailable("uvloop is not installed (pip install uvloop); use auto")
    return "asyncio"


def loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """A callable making a new loop of the resolved kind (for asyncio.Runner and pytest)."""
    if resolve(choice) == "uvloop":
        factory = _uvloop_factory()
        assert factory is not None  # resolve() imported it
        return factory
    return asyncio.new_event_loop


def choice_from_env(default: str = "auto") -> str:
    """The choice named by the environment (the test stack reads it before the settings)."""
    return os.environ.get(SETTING, default).strip().lower() or default


def run(main: Coroutine[Any, Any, _T], choice: str) -> _T:
    """``asyncio.run(main)`` on the chosen loop."""
    with asyncio.Runner(loop_factory=loop_factory(choice)) as runner:
        return runner.run(main)
