"""A bounded job queue and the single thread that owns the model.

One thread runs every forward pass: on a few CPU cores (or one GPU) parallel forwards only contend for
the same compute, and one owner needs no locks around the model. Compatible jobs waiting in the queue
(image generation or edits with equal size, steps, guidance, ...; greedy chats) share one batched call.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Sequence

from tuna.serve.tasks import Job, JobCancelled, JobTimeout

log = logging.getLogger("tuna.serve")


class QueueFull(Exception):
    def __init__(self, retry_after: int):
        super().__init__(f"the server is busy; retry after {retry_after} s")
        self.retry_after = retry_after


class Worker:
    def __init__(self, pipe, queue_size: int, max_batch_images: int):
        self.pipe = pipe
        self.queue_size = queue_size
        self.max_batch_images = max_batch_images
        self._jobs: deque[Job] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="tuna-model", daemon=True)
        self._seconds_per_job = 1.0  # running mean, for Retry-After
        self.batches_run = 0  # batched calls, for tests and logs
        self.largest_batch = 0

    # ------------------------------------------------------------------ client side (event loop)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._stopping = True
            pending = list(self._jobs)
            self._jobs.clear()
            self._cond.notify_all()
        for job in pending:
            if job.future.set_running_or_notify_cancel():
                job.future.set_exception(QueueFull(1))
        self._thread.join(timeout)

    @property
    def queued(self) -> int:
        return len(self._jobs)

    def submit(self, job: Job) -> None:
        with self._cond:
            if self._stopping or len(self._jobs) >= self.queue_size:
                wait = math.ceil(self._seconds_per_job * (len(self._jobs) + 1))
                raise QueueFull(max(1, min(60, wait)))
            self._jobs.append(job)
            self._cond.notify()

    # ------------------------------------------------------------------ worker thread

    def _take(self) -> list[Job] | None:
        """The oldest job plus any queued jobs that can share its batched call."""
        with self._cond:
            while not self._jobs and not self._stopping:
                self._cond.wait()
            if self._stopping:
                return None
            first = self._jobs.popleft()
            batch, key = [first], first.batch_key()
            if key is not None:
                room = self.max_batch_images - first.images
                for job in list(self._jobs):
                    if job.batch_key() == key and job.images <= room:
                        self._jobs.remove(job)
                        batch.append(job)
                        room -= job.images
            return batch

    def _loop(self) -> None:
        while (taken := self._take()) is not None:
            started = time.monotonic()
            live = [job for job in taken if self._claim(job)]
            if live:
                self._run(live)
                spent = (time.monotonic() - started) / len(live)
                self._seconds_per_job = 0.8 * self._seconds_per_job + 0.2 * spent

    @staticmethod
    def _claim(job: Job) -> bool:
        """Mark a job running; drop it (settled) if it was cancelled or expired while queued."""
        if not job.future.set_running_or_notify_cancel():
            _cleanup(job)
            return False
        try:
            job.check()
        except (JobTimeout, JobCancelled) as err:
            _settle(job, error=err)
            return False
        return True

    def _run(self, jobs: Sequence[Job]) -> None:
        if jobs[0].batch_key() is None:
            for job in jobs:
                self._run_one(job, lambda j=job: j.run(self.pipe))
            return
        self.batches_run += 1
        self.largest_batch = max(self.largest_batch, sum(j.images for j in jobs))
        run_batch = type(jobs[0]).run_batch
        try:
            results = run_batch(self.pipe, jobs)
        except JobCancelled as err:  # raised mid-call only once every job in the batch is cancelled
            for job in jobs:
                _settle(job, error=err)
            return
        except Exception as err:
            if len(jobs) == 1:
                _settle(jobs[0], error=err)
                return
            # one bad request must not fail the others it was batched with: run them one by one
            log.warning("a batched call failed (%s); retrying its %d jobs one by one", err, len(jobs))
            for job in jobs:
                self._run_one(job, lambda j=job: run_batch(self.pipe, [j])[0])
            return
        for job, result in zip(jobs, results):
            _settle(job, result=result)

    @staticmethod
    def _run_one(job: Job, call) -> None:
        try:
            result = call()
        except Exception as err:
            _settle(job, error=err)
        else:
            _settle(job, result=result)


def _settle(job: Job, result=None, error: BaseException | None = None) -> None:
    if error is not None and not isinstance(error, (ValueError, FileNotFoundError, JobTimeout, JobCancelled)):
        log.error("job failed", exc_info=error)
    _cleanup(job)  # first: once the future is settled the client may already have its answer
    if error is not None:
        job.future.set_exception(error)
    else:
        job.future.set_result(result)


def _cleanup(job: Job) -> None:
    for path in job.cleanup:
        path.unlink(missing_ok=True)
