"""What one signed-in request costs the gate, for A/B work on the hot path.

    python bench/cost.py                      # gate CPU µs/req under wrk (-c50), 3 runs
    python bench/cost.py --callgrind          # instructions per request (valgrind), reproducible
    python bench/cost.py --py-spy out.txt     # a py-spy profile (raw, collapsed stacks)
    python bench/cost.py --no-cache           # the same with GATE_SESSION_CACHE_TTL=0

The same stack as bench/run.py's hot-path row (nginx serving the 1 KB page, a redis-server,
moto's Cognito for the one sign-in, `cognito-gate serve` with default logging and metrics),
but only the gate is measured. req/s on a shared machine moves by ±50 %; CPU per request moves
less, and callgrind's instruction count (user space only: the gate's Python, C extensions and
libc, not the kernel's TCP) barely at all, so that is the figure for comparing two versions of
the code. Under callgrind the gate runs ~50x slower: the requests are sent by a small client
here (``--connections`` keep-alive connections, ``--requests`` in all) instead of wrk.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import run  # bench/run.py: the stack


async def _client(port: int, cookie: str, connections: int, requests: int) -> int:
    """``requests`` GETs over ``connections`` keep-alive connections; returns the 200s."""
    head = (
        f"GET {run.BENCH_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: gate={cookie}\r\n\r\n"
    ).encode()
    per = requests // connections
    ok = 0

    async def one() -> None:
        nonlocal ok
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(per):
            writer.write(head)
            status = await reader.readuntil(b"\r\n\r\n")
            match = re.search(rb"(?i)\r\ncontent-length: *(\d+)", status)
            if match is None:
                raise RuntimeError(f"no Content-Length: {status[:200]!r}")
            await reader.readexactly(int(match.group(1)))
            ok += status.startswith(b"HTTP/1.1 200")
            if not status.startswith(b"HTTP/1.1 200"):
                print("not 200:", status[:40])
        writer.close()

    await asyncio.gather(*(one() for _ in range(connections)))
    return ok


def _callgrind_total(out: Path) -> int:
    total = 0
    for path in out.parent.glob(out.name + "*"):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("summary:") or line.startswith("totals:"):
                total = max(total, int(line.split()[1]))
                break
    return total


def _user_sys(pid: int) -> tuple[float, float]:
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rpartition(")")[2].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--callgrind", action="store_true")
    parser.add_argument("--py-spy", metavar="FILE")
    parser.add_argument("--no-cache", action="store_true")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--requests", type=int, default=2000, help="(--callgrind)")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the gate")
    parser.add_argument(
        "--wrap", metavar="CMD", help="start the gate under CMD (e.g. 'python -m cProfile -o F')"
    )
    parser.add_argument(
        "--attach", metavar="CMD", help="run CMD ({pid}: the gate's) during the measured runs"
    )
    args = parser.parse_args()

    from proxy.demo import DEMO_USERS, start_local_cognito

    pinning = run.Pinning.detect()
    procs = run.Processes()
    workdir = Path(tempfile.mkdtemp(prefix="gate-cost-"))
    cognito = None
    try:
        nginx = run.start_nginx_upstream(procs, pinning, workdir)
        if nginx is None:
            raise run.BenchError("nginx is needed (apt-get install nginx-light)")
        upstream_url = nginx[0]
        cognito = start_local_cognito()
        redis_url = run.start_redis(procs, pinning, workdir)
        extra = dict(e.split("=", 1) for e in args.env)
        if args.no_cache:
            extra["GATE_SESSION_CACHE_TTL"] = "0"
        out = workdir / "callgrind.out"
        argv_wrap = run.gate_argv
        if args.callgrind:
            valgrind = shutil.which("valgrind")
            if valgrind is None:
                raise run.BenchError("valgrind is not installed")
            wrapped = [
                valgrind, "--tool=callgrind", "--instr-atstart=no",
                f"--callgrind-out-file={out}", *run.gate_argv(),
            ]  # fmt: skip
            run.gate_argv = lambda: wrapped  # type: ignore[assignment]
        elif args.wrap:
            wrapped = [*args.wrap.split(), *run.gate_argv()]
            run.gate_argv = lambda: wrapped  # type: ignore[assignment]
        try:
            gate = run.start_gate(
                procs, pinning, workdir, cognito=cognito, upstream_url=upstream_url,
                store_url=redis_url, label="cost", extra_env=extra,
            )  # fmt: skip
        finally:
            run.gate_argv = argv_wrap  # type: ignore[assignment]
        print(f"gate stderr: {gate.stderr_path}", file=sys.stderr)
        user = DEMO_USERS[0]
        cookie = asyncio.run(run.login(gate.url, user.username, user.password))
        port = int(gate.url.rsplit(":", 1)[1])
        pid = gate.proc.pid
        if args.callgrind:
            control = shutil.which("callgrind_control") or "callgrind_control"
            subprocess.run([control, "-i", "on", str(pid)], check=True, capture_output=True)
            asyncio.run(_client(port, cookie, 2, 200))  # warm: every code path compiled once
            subprocess.run([control, "-z", str(pid)], check=True, capture_output=True)
            t0 = time.monotonic()
            ok = asyncio.run(_client(port, cookie, args.connections, args.requests))
            subprocess.run([control, "-d", str(pid)], check=True, capture_output=True)
            time.sleep(1)
            total = _callgrind_total(out)
            print(
                f"callgrind: {ok} of {args.requests} answered 200 over {args.connections} "
                f"connections in {time.monotonic() - t0:.1f} s; {total:,} instructions, "
                f"{total / max(ok, 1):,.0f} per request"
            )
            for path in sorted(out.parent.glob(out.name + "*")):
                if path.stat().st_size > 0 and os.environ.get("COST_KEEP"):
                    shutil.copy(path, Path(os.environ["COST_KEEP"]) / path.name)
            return 0
        gen = run.LoadGen(pinning, workdir, force_python=False, verbose=False)
        target_headers = {"Cookie": f"gate={cookie}"}
        gen.run(gate.url + run.BENCH_PATH, target_headers, args.connections, 1)  # warm
        spy = None
        if args.py_spy:
            spy = subprocess.Popen(
                [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid),
                 "-d", str(int(args.duration * args.repeat)), "-r", "250", "-f", "raw",
                 "--nonblocking", "-o", args.py_spy],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            time.sleep(1)
        attached = None
        if args.attach:
            attached = subprocess.Popen(args.attach.format(pid=pid), shell=True)
            time.sleep(1)
        figures = []
        for _ in range(args.repeat):
            user0, sys0 = _user_sys(pid)
            url = gate.url + run.BENCH_PATH
            raw = gen.run(url, target_headers, args.connections, args.duration)
            user1, sys1 = _user_sys(pid)
            cpu = user1 + sys1 - user0 - sys0
            if raw["non_2xx"] or raw["socket_errors"]:
                raise run.BenchError(f"non-2xx {raw['non_2xx']}, errors {raw['socket_errors']}")
            n = raw["requests"]
            figures.append((cpu / n * 1e6, n / (raw["duration_us"] / 1e6)))
            print(
                f"gate CPU {figures[-1][0]:6.1f} µs/req (user {(user1 - user0) / n * 1e6:.1f}, "
                f"system {(sys1 - sys0) / n * 1e6:.1f})   {figures[-1][1]:8,.0f} req/s"
            )
        if spy is not None:
            spy.wait()
        if attached is not None:
            attached.send_signal(signal.SIGINT)
            attached.wait()
        best = sorted(f[0] for f in figures)
        print(f"gate CPU µs/req: min {best[0]:.1f}, median {best[len(best) // 2]:.1f}")
        print(f"load average: {run.load_average()}")
        return 0
    finally:
        procs.stop_all()
        if cognito is not None:
            cognito.stop()
        if not os.environ.get("COST_KEEP"):
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
