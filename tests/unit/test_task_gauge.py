"""``gate_asyncio_tasks``: the number of unfinished tasks on the loop the scrape runs on, read
at scrape time, so a leak of tasks shows as a rising line."""

from __future__ import annotations

import asyncio
import re

from proxy.observe import Metrics

_SAMPLE = re.compile(r"^gate_asyncio_tasks (\S+)$", re.MULTILINE)


def tasks_in(metrics: Metrics) -> float:
    match = _SAMPLE.search(metrics.exposition().decode())
    assert match, "gate_asyncio_tasks is not exported"
    return float(match.group(1))


async def test_the_gauge_counts_tasks_while_they_run_and_drops_them_when_done() -> None:
    metrics = Metrics()
    before = tasks_in(metrics)
    assert before >= 1  # this test's own task
    release = asyncio.Event()
    held = [asyncio.create_task(release.wait()) for _ in range(25)]
    await asyncio.sleep(0)
    assert tasks_in(metrics) == before + 25
    release.set()
    await asyncio.gather(*held)
    assert tasks_in(metrics) == before


def test_outside_an_event_loop_it_reads_zero() -> None:
    assert tasks_in(Metrics()) == 0
