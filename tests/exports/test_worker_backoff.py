"""The supervisor's restart delay doubles while the worker keeps dying, and starts over
once a run has stayed up for the healthy period."""

from __future__ import annotations

import asyncio

from pivotal_reporting.config import Settings
from pivotal_reporting.worker import RestartBackoff, SupervisedWorker, WorkerOptions


def test_delay_doubles_to_the_cap_then_resets_after_a_healthy_run() -> None:
    backoff = RestartBackoff(minimum=0.5, maximum=30.0, healthy_after=60.0)
    quick = [backoff.delay_after(ran_for=1.0) for _ in range(8)]
    assert quick == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert backoff.delay_after(ran_for=59.9) == 30.0  # not yet healthy
    assert backoff.delay_after(ran_for=60.0) == 0.5  # a healthy run: start over
    assert backoff.delay_after(ran_for=0.1) == 1.0


class RecordingBackoff(RestartBackoff):
    def __init__(self) -> None:
        # Tiny delays so the test does not sleep; the doubling is what is checked.
        super().__init__(minimum=0.001, maximum=0.008, healthy_after=60.0)
        self.delays: list[float] = []

    def delay_after(self, ran_for: float) -> float:
        delay = super().delay_after(ran_for)
        self.delays.append(delay)
        return delay


class ScriptedWorker(SupervisedWorker):
    """Each run lasts the next scripted number of (fake) seconds, then dies."""

    def __init__(self, run_seconds: list[float]) -> None:
        self.now = 0.0
        self.script = list(run_seconds)
        self.backoff_log = RecordingBackoff()
        super().__init__(
            "postgresql://unused@/db",
            Settings(database_url="postgresql://unused@/db"),
            WorkerOptions(),
            backoff=self.backoff_log,
            clock=lambda: self.now,
        )

    async def _run_once(self) -> None:
        if not self.script:
            self.stop()
            return
        self.now += self.script.pop(0)
        raise ConnectionError("the database went away")


def test_supervisor_resets_its_delay_after_a_healthy_period() -> None:
    # Five quick deaths (an outage), a run of two hours, then two quick deaths again.
    worker = ScriptedWorker([0.2, 0.2, 0.2, 0.2, 0.2, 7200.0, 0.2, 0.2])
    asyncio.run(asyncio.wait_for(worker.run_forever(), timeout=30))
    assert worker.restarts == 8
    assert worker.backoff_log.delays == [0.001, 0.002, 0.004, 0.008, 0.008, 0.001, 0.002, 0.004]
