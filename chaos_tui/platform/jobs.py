"""The job queue's names: what the reference worker, the job producer and the queue scenarios
agree on, on every target (the sandbox's Valkey, the compose stack's).

Jobs are Dramatiq messages on a Redis-protocol broker (Valkey). Dramatiq keeps, under its
namespace: the queue `NS:Q` (a list of message ids) with the bodies in `NS:Q.msgs`, the
delayed queue `NS:Q.DQ` (retries wait there through their backoff) with `NS:Q.DQ.msgs`, and
the dead letters `NS:Q.XQ` (a sorted set by time of death) with `NS:Q.XQ.msgs`.

Each completion is recorded by the worker in the ledger (a Valkey the faults never touch, so
it is the test's observer, like Jepsen's client history): one list per run, one entry per
completion, `job_id worker attempt finished_at`, so a job done twice shows twice.
"""

from __future__ import annotations

NAMESPACE = "dramatiq"
QUEUE = "chaos_jobs"
JOB_ACTOR = "chaos_job"  # args: run_id, job_id, work_ms, enqueued_at (epoch s)
SIDE_ACTOR = "chaos_side_job"  # the same work under another name (for scoped injectors)
MAX_RETRIES = 3  # the reference worker's retry budget: 1 try + 3 retries, then dead letters
MIN_BACKOFF_MS = 100
MAX_BACKOFF_MS = 1_000
SENTINEL_MASTER = "chaos-queue"


def queue_key(queue: str = QUEUE) -> str:
    return f"{NAMESPACE}:{queue}"


def messages_key(queue: str = QUEUE) -> str:
    return f"{NAMESPACE}:{queue}.msgs"


def delayed_key(queue: str = QUEUE) -> str:
    return f"{NAMESPACE}:{queue}.DQ"


def dead_key(queue: str = QUEUE) -> str:
    return f"{NAMESPACE}:{queue}.XQ"


def ledger_key(run_id: str) -> str:
    """The list of completions of one run's jobs."""
    return f"chaos:done:{run_id}"


def ledger_entry(job_id: str, worker: str, attempt: int, finished_at: float) -> str:
    return f"{job_id} {worker} {attempt} {finished_at:.6f}"


def parse_ledger_entry(entry: str) -> tuple[str, str, int, float]:
    job_id, worker, attempt, finished_at = entry.split(" ")
    return job_id, worker, int(attempt), float(finished_at)
