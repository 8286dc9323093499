"""One process of a `cep replay --processes N` cluster.

    python -m cep.runtime.worker JOB_PICKLE PROCESS_ID

The parent (`cep.runtime.replay.run_job`) writes the job, picks the ports
and starts one of these per process; each rebuilds the rules from their
paths and runs its share of the Bytewax cluster. While it runs it writes
its progress counters to `progress-<id>.json` beside the job, for the
parent's progress bar.
"""

from __future__ import annotations

import os
import pickle
import sys
import threading

import orjson

from cep.engine.model import json_bytes


def _progress_path(work: str, process_id: int) -> str:
    return os.path.join(work, f"progress-{process_id:04d}.json")


def _report(work: str, process_id: int, stop: threading.Event) -> None:
    from cep.runtime.dataflow import PROGRESS

    path = _progress_path(work, process_id)
    while not stop.wait(0.25):
        with PROGRESS.lock:
            data = [sum(PROGRESS.bytes_read.values()), PROGRESS.lines, PROGRESS.matches]
        tmp = path + ".tmp"
        with open(tmp, "wb") as fh:
            fh.write(json_bytes(data))
        os.replace(tmp, path)  # the reader never sees half a file


def read_progress(work: str) -> tuple[int, int, int]:
    """The sums of the counters the processes last wrote."""
    total = [0, 0, 0]
    for name in os.listdir(work):
        if name.startswith("progress-") and name.endswith(".json"):
            try:
                with open(os.path.join(work, name), "rb") as fh:
                    data = orjson.loads(fh.read())
            except (OSError, orjson.JSONDecodeError):
                continue  # replaced while we looked: the next poll reads it
            total = [a + b for a, b in zip(total, data)]
    return total[0], total[1], total[2]


def main(argv: list[str]) -> int:
    from cep.runtime.glue import Env
    from cep.runtime.replay import run_in_process

    path, process_id = argv[0], int(argv[1])
    with open(path, "rb") as fh:
        job = pickle.load(fh)  # written by our own parent process, never user input
    stop = threading.Event()
    reporter = threading.Thread(target=_report, args=(job.flow.out_dir, process_id, stop), daemon=True)
    reporter.start()
    try:
        run_in_process(job, Env(job.env), process_id)
    finally:
        stop.set()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
