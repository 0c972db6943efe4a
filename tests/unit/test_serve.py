"""`cognito-gate serve` keeps what it built at start out of the cyclic GC's full collections."""

from __future__ import annotations

import subprocess
import sys


def test_freezing_moves_existing_objects_out_of_collection() -> None:
    # In a child process: freezing the test runner's own heap would outlive this test.
    # proxy.serve.serve() calls it once the listener is up (see test_shutdown for serve itself).
    code = (
        "import gc\n"
        "import proxy.app\n"
        "from proxy.serve import freeze_startup_objects\n"
        "freeze_startup_objects()\n"
        "assert gc.get_freeze_count() > 1000, gc.get_freeze_count()\n"
        "assert gc.get_threshold()[0] == 10_000, gc.get_threshold()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
