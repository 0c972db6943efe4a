"""podman, driven from the image tests: every call has a timeout and fails with its output."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable

IMAGE = os.environ.get("GATE_TEST_IMAGE", "localhost/cognito-gate:test")


def podman(
    *args: str, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("podman")
    assert exe, "podman is not installed: run `make image-test` (deploy/image/podman-setup.sh)"
    done = subprocess.run(
        [exe, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"podman {' '.join(args)} -> {done.returncode}\n{done.stdout}\n{done.stderr}"
        )
    return done


def require_image(image: str = IMAGE) -> None:
    if podman("image", "exists", image, check=False).returncode != 0:
        raise AssertionError(f"no image {image}: build it with `make image-test`")


def logs(container: str) -> str:
    done = podman("logs", container, check=False)
    return done.stdout + done.stderr


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(what)
