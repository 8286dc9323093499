"""The Bytewax dataflow, input readers, sinks and the replay driver.

`replay_matches` runs the real dataflow on in-memory partitions, for the
differential tests (dataflow == reference interpreter, on 1 and N workers).
"""

from __future__ import annotations

import os

import orjson

from cep.engine.model import DeadLetter, Match, Stats, StreamSettings


def replay_matches(ruleset_or_paths, partitions: list[list[dict]], *, workers: int = 1, processes: int = 1,
                   lateness_ms: int = 0, settings: StreamSettings | None = None,
                   default_key: str | None = None) -> tuple[list[Match], list[DeadLetter], Stats]:
    """Replay `partitions` (lists of event dicts, in partition order) through
    the dataflow; returns (matches in replay output order, dead letters in
    partition then line order, statistics).

    `ruleset_or_paths`: rule file/directory paths, or a loaded RuleSet (then
    only with processes=1: other processes load rules from files). The
    events go through JSON-lines files in a temporary directory, named
    `partition-<i>.jsonl`: a dead letter's `source` is that name and its
    `offset` the 1-based position in the list."""
    from cep.runtime import replay as rp
    from cep.runtime.glue import Env, EnvSpec, load_program
    from cep.runtime.inputs import Partition

    settings = settings or StreamSettings(lateness_ms=lateness_ms)
    if isinstance(ruleset_or_paths, (str, os.PathLike)):
        ruleset_or_paths = [ruleset_or_paths]
    if isinstance(ruleset_or_paths, (list, tuple)):
        paths = tuple(str(p) for p in ruleset_or_paths)
        ruleset, program = load_program(paths, default_key)
    else:
        if processes > 1:
            raise ValueError("several processes need the rules as paths")
        from cep.compile import compile_ruleset

        paths, ruleset = (), ruleset_or_paths
        program = compile_ruleset(ruleset)
    spec = EnvSpec(paths, default_key, settings)
    env = Env(spec, ruleset, program)
    with rp.work_dir() as work:
        inputs = os.path.join(work, "in")
        os.mkdir(inputs)
        parts = []
        for i, events in enumerate(partitions):
            name = os.path.join(inputs, f"partition-{i}.jsonl")
            with open(name, "wb") as fh:
                fh.writelines(orjson.dumps(e) + b"\n" for e in events)
            parts.append(Partition(name, "jsonl", False))
        out = os.path.join(work, "out")
        os.mkdir(out)
        rp.run_job(rp.make_job(spec, parts, out, workers=workers, processes=processes), env)
        matches = [Match(d["rule"], d["output"], d["key"], d["start_ts"], d["end_ts"], d["payload"])
                   for d in map(orjson.loads, rp.match_lines(out))]
        dead = []
        for d in map(orjson.loads, rp.dead_letter_lines(out)):
            d["source"] = os.path.basename(d["source"])
            dead.append(DeadLetter(**d))
        return matches, dead, rp.read_stats(out)


__all__ = ["replay_matches"]
