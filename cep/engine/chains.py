"""Chain rules: one-event steps joined by `next`, matched without the NFA interpreter.

A *chain* rule is one whose every step takes exactly one event (`TYPE`,
`(A | B)` or `any`, with any `where` and capture, count 1 included) and whose
steps are all joined by `next`, with no `not`: P1 and P3 of the benchmark,
and the "A, then right after it B" rules CX staff write most.  §3 rule 2 then
leaves a run two outcomes at each event of its key: the event satisfies the
run's next step and the run moves on (completing at the last step, rule 5),
or it dies (`next`; or `within`, rule 6, checked first).  No run ever waits,
skips or takes a second event at one step, opens a window or meets a `not`.

So a key's runs of all the chain rules of one key group are one list, each
run `[rule index, step, start, captures, key, hkey]`, advanced together by one function
per event type (`ChainSet.handler`), built at start-up from the compiled
steps: which steps can take the type at all, and their `where`s.  No
`KeyState`, `Run`, deadline heap or per-rule visit; per event one dict
lookup for the key, and the start index.  `tests/engine/test_chains.py`
holds this path to the interpreter's matches, statistics and live runs, and
the differential tests hold both to the reference of SPEC §3.

Rule 7 needs no ordering here: the runs of one rule are at distinct steps
(each started at a different event of the key, and all move together), so at
most one completes per event.  Rule 6 is applied when the key's next event
comes and, for keys that go quiet, from a queue of start times when time
moves (`expire`).  Cooldown stamps (rule 8) are a dict per rule.
"""

from __future__ import annotations

import collections

import orjson

from cep.compile.program import StepKind, start_constant
from cep.engine.model import Match

__all__ = ["ChainSet", "is_chain", "hashable_key", "bounded_fan_out"]

# the most chain runs one event may start in one key group (`bounded_fan_out`)
MAX_FAN_OUT = 8

DEAD = -1  # the step of a run that has ended (`ChainSet.wq`)


def is_chain(r, max_runs_per_key: int) -> bool:
    """Whether rule `r` is a chain (above).  A key holds at most one run per
    step but the last, so `max_runs_per_key` can never bind when it is at
    least the number of steps; below that the interpreter counts the `cap`
    deaths."""
    st = r.steps
    if max_runs_per_key < len(st):
        return False
    for i, s in enumerate(st):
        if s.kind != StepKind.EVENT or s.min != 1 or s.max != 1 or s.wait_guards or s.pre_guards:
            return False
        if i and s.connector != "next":
            return False
    return True


def bounded_fan_out(rules) -> list:
    """The chain rules of one key group that a ChainSet takes: all but those an
    event could start more than MAX_FAN_OUT at once with.  A ChainSet makes a
    run per rule an event starts, and tests each at the key's next event; the
    interpreter starts runs that begin `T next ...` *deferred*, one record
    for all of them, and wakes only the rules whose second step the next
    event can satisfy (`matcher._DeferSet`).  So a generated pack of 300
    `search next page_view where page == "/product/N" ...` rules stays with
    the interpreter, while P1, P3 and rules indexed by a first-step constant
    come here.  An event of type T carrying value v in field f starts the
    rules whose first step takes T and whose constant (if any) is v."""
    ANY = object()  # the bucket of first steps that take any type
    free: dict = {}  # type -> rules whose first step has no indexed constant
    held: dict = {}  # (type, field, value) -> rules whose first step requires it
    for r in rules:
        types = r.steps[0].matcher.types
        sc = r.start_const
        for t in (ANY,) if types is None else types:
            if sc is None or len(sc[0]) != 1:
                free.setdefault(t, []).append(r)
            else:
                for v in sc[1]:
                    held.setdefault((t, sc[0][0], v), []).append(r)
    out_of_bounds = set()
    any_free = free.get(ANY, [])
    for t, rs in free.items():
        group = rs + (any_free if t is not ANY else [])
        if len(group) > MAX_FAN_OUT:
            out_of_bounds.update(r.index for r in group)
    for (t, _, _), rs in held.items():
        group = rs + free.get(t, []) + (any_free if t is not ANY else [])
        if len(group) > MAX_FAN_OUT:
            out_of_bounds.update(r.index for r in group)
    return [r for r in rules if r.index not in out_of_bounds]


def hashable_key(k):
    """A hashable form of a key that keeps JSON types apart (1, 1.0, true, "1")."""
    if type(k) is str:
        return k
    try:
        return orjson.dumps(k, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        # beyond what orjson writes (an int over 64 bits): still one key per value
        return ("repr", type(k).__name__, repr(k))


def _taker(step, etype, hashable):
    """How step `step` tests an event of type `etype`: False (its types exclude
    it), True (any such event), or the compiled `where`."""
    types = step.matcher.types
    if types is not None and not (hashable and etype in types):
        return False
    return True if step.matcher.where is None else step.matcher.where


class ChainSet:
    """The chain rules of one key group and their runs."""

    __slots__ = ("rules", "by_index", "within", "keys", "handlers", "started", "dnext", "dwithin", "discarded",
                 "rstats", "wq", "wlimit", "stamps", "cq", "solo")

    # the within queues are compacted when they hold more entries than
    # `wlimit`: four times what survived the last compaction plus this
    QUEUE_SLACK = 1024

    def __init__(self, rules, n_rules: int, rstats: list):
        self.rules = tuple(rules)  # CompiledRule, in rule order
        self.by_index = {r.index: r for r in self.rules}
        w = [None] * n_rules
        for r in self.rules:
            w[r.index] = r.within_ms
        self.within = tuple(w)  # by rule index
        # hkey -> [[rule index, step, start, caps, key, hkey], ...] in start order
        self.keys: dict = {}
        self.handlers: dict = {}  # event type -> `parts`
        # statistics not yet folded into the rules' RuleStats (`fold`): plain
        # list slots by rule index, not a Counter update per run
        self.started = [0] * n_rules
        self.dnext = [0] * n_rules
        self.dwithin = [0] * n_rules
        self.discarded = [0] * n_rules
        self.rstats = rstats  # RuleStats by rule index (matches and suppressions go straight there)
        # rule 6 for keys that go quiet: per distinct within, a FIFO of the
        # runs started (their start + within is their expiry); starts come in
        # time order, so each is sorted.  A run that ends (dies, completes or
        # is discarded) has its step set to DEAD, so its entry is known stale
        # without a lookup
        self.wq: dict = {r.within_ms: collections.deque() for r in self.rules if r.within_ms is not None}
        self.wlimit = self.QUEUE_SLACK
        # rule 8: per rule with a cooldown, hkey -> (stamp, key): the completion
        # time of the last emitted match; and a FIFO of (stamp + cooldown, hkey, stamp)
        self.stamps: dict = {r.index: {} for r in self.rules if r.cooldown_ms is not None}
        self.cq: dict = {ri: collections.deque() for ri in self.stamps}
        # (type field, key field) when the Matcher's program is these rules
        # alone, on one plain key field: `on_batch` then does all its work
        self.solo: tuple[str, str] | None = None

    # ------------------------------------------------------------ per event

    def handler(self, etype):
        """The function `(key, hkey, ts, event, out)` that applies one event of
        type `etype` to the group's chain rules; None when the type touches
        none of them."""
        got = self.parts(etype)
        if got is False:
            return None
        full, aname, avalues = got
        keys = self.keys
        kill = self.kill

        if full is None:
            # no step of any chain rule takes this type: it only ends runs
            def dead_end(k, hk, ts, ev, out):
                if hk in keys:
                    kill(keys.pop(hk), ts)
            return dead_end
        if aname is None:
            return full

        def on(k, hk, ts, ev, out):
            # every step that takes this type requires `aname` to carry one of
            # `avalues`: an event that does not only ends runs
            v = ev.get(aname)
            if v.__class__ is not str or v not in avalues:
                if hk in keys:
                    kill(keys.pop(hk), ts)
                return
            full(k, hk, ts, ev, out)
        return on

    def parts(self, etype):
        """What an event of type `etype` does (cached per hashable type): False
        when the type touches none of the set's rules (it is irrelevant to
        them), else (the function `(key, hkey, ts, event, out)` that steps and starts the
        key's runs, or None when no step takes the type; a field, or None; the
        strs that field must carry, else the event only ends the key's runs
        (`_any_constant`))."""
        try:
            got = self.handlers.get(etype)
        except TypeError:  # an unhashable type value: only `any` steps take it
            return self._make_parts(etype)
        if got is None:
            got = self._make_parts(etype)
            if len(self.handlers) < 100_000:
                self.handlers[etype] = got
        return got

    def kill(self, runs, ts):
        """Every run of a key dies (its event takes none of them): of rule 6
        when too old, else of `next`."""
        within, dwithin, dnext = self.within, self.dwithin, self.dnext
        for run in runs:
            ri = run[0]
            run[1] = DEAD
            w = within[ri]
            if w is not None and run[2] < ts - w:
                dwithin[ri] += 1
            else:
                dnext[ri] += 1

    def on_batch(self, entries, out, tf: str, kname: str) -> tuple[int, int]:
        """`Matcher.on_batch` for a program made only of this set's rules, on one
        plain key field `kname`, with a plain type field `tf`: the same work
        without the interpreter's plans (one ChainSet, no deadlines).  Returns
        how many events without a group were relevant and irrelevant."""
        handlers = self.handlers
        keys = self.keys
        kill = self.kill
        relevant = irrelevant = 0
        for ts, _, _, group, ev in entries:
            etype = ev.get(tf)
            try:
                got = handlers.get(etype)
            except TypeError:
                got = None
            if got is None:
                got = self.parts(etype)
            k = ev.get(kname)
            if k is None or got is False:
                if group is None:
                    irrelevant += 1
                continue
            if group is None:
                relevant += 1
            hk = k if k.__class__ is str else hashable_key(k)
            full, aname, avalues = got
            if full is None:
                if hk in keys:
                    kill(keys.pop(hk), ts)
                continue
            if aname is not None:
                v = ev.get(aname)
                if v.__class__ is not str or v not in avalues:
                    if hk in keys:
                        kill(keys.pop(hk), ts)
                    continue
            full(k, hk, ts, ev, out)
        return relevant, irrelevant

    def _make_parts(self, etype):
        hashable = etype.__class__ is str or etype is None
        if not any(r.all_types or (hashable and etype in r.types) for r in self.rules):
            return False  # no chain rule is affected by the type (one-step rules only)
        keys = self.keys
        dnext, dwithin, started, discarded = self.dnext, self.dwithin, self.started, self.discarded
        within = self.within
        # per rule: per step after the first, (test, slot, is_list, project, last)
        moves: list = [None] * len(within)
        movable = False
        for r in self.rules:
            last = len(r.steps) - 1
            mv = []
            for s in r.steps[1:]:
                t = _taker(s, etype, hashable)
                movable = movable or t is not False
                mv.append((t, s.slot, s.is_list, s.project, s.index == last))
            moves[r.index] = (None, *mv)  # indexed by the step the run moves to
        moves = tuple(moves)

        # rule 1: the rules whose first step this type can satisfy, indexed like
        # the interpreter's plans: a first step whose where requires one plain
        # field to carry a str constant is looked up by that field's value
        always: list = []
        table: dict = {}
        cname = None
        for r in self.rules:
            s0 = r.steps[0]
            if _taker(s0, etype, hashable) is False:
                continue
            sc = r.start_const
            if sc is not None and len(sc[0]) == 1 and (cname is None or sc[0][0] == cname):
                cname = sc[0][0]
                for v in sc[1]:
                    table.setdefault(v, []).append(self._starter(r))
            else:
                always.append(self._starter(r, full=True))
        always = tuple(always)
        table = {v: tuple(s) for v, s in table.items()}
        if not table:
            cname = None
        aname, avalues = self._any_constant(etype, hashable)
        complete = self._complete
        wqueue = tuple(self.wq.get(w) if w is not None else None for w in within)
        compact = self._compact
        this = self
        if not movable and not always and cname is None:
            return (None, None, None)

        def full(k, hk, ts, ev, out):
            runs = keys.get(hk)  # stepped in place: the survivors are written back
            done = None
            if runs is not None:
                n = 0
                for run in runs:
                    ri = run[0]
                    start = run[2]
                    w = within[ri]
                    if w is not None and start < ts - w:
                        dwithin[ri] += 1  # rule 6, before anything the event could do
                        run[1] = DEAD
                        continue
                    p = run[1] + 1
                    t, slot, is_list, pj, last = moves[ri][p]
                    caps = run[3]
                    if t is True or (t is not False and t(ev, caps, start, ts, k)):
                        if slot >= 0:
                            x = ev if pj is None else pj(ev)
                            caps[slot] = [x] if is_list else x
                        if last:
                            run[1] = DEAD
                            if done is None:
                                done = [run]
                            else:
                                done.append(run)
                        else:
                            run[1] = p
                            runs[n] = run
                            n += 1
                    else:
                        dnext[ri] += 1  # rule 2, third bullet
                        run[1] = DEAD
                del runs[n:]
            # rule 1
            starters = always
            if cname is not None:
                v = ev.get(cname)
                if v.__class__ is str:
                    more = table.get(v)
                    if more is not None:
                        starters = more if not starters else starters + more
            for ri, where0, tmpl, n_slots, slot, is_list, pj, single in starters:
                if where0 is not None and not where0(ev, tmpl, ts, ts, k):
                    continue
                started[ri] += 1
                if done is not None and any(d[0] == ri for d in done):
                    discarded[ri] += 1  # rule 7: the run the completing event would start
                    continue
                caps = list(tmpl) if n_slots else ()
                if slot >= 0:
                    x = ev if pj is None else pj(ev)
                    caps[slot] = [x] if is_list else x
                run = [ri, 0, ts, caps, k, hk]
                if single:
                    if done is None:
                        done = [run]
                    else:
                        done.append(run)
                    continue
                if runs is None:
                    runs = keys[hk] = [run]
                else:
                    runs.append(run)
                q = wqueue[ri]
                if q is not None:
                    q.append(run)  # rule 6 when the key goes quiet (`expire`)
                    if len(q) > this.wlimit:
                        compact()
            if done is not None:
                if len(done) > 1:
                    done.sort(key=_rule_of_run)  # matches of one event in rule order
                for run in done:
                    ri = run[0]
                    if runs:
                        n = 0
                        for x in runs:
                            if x[0] == ri:
                                x[1] = DEAD  # rule 7: the rest of the rule's runs
                                discarded[ri] += 1
                            else:
                                runs[n] = x
                                n += 1
                        del runs[n:]
                    complete(ri, k, hk, run, ts, out)
            if runs is not None and not runs:
                del keys[hk]

        return (full, aname, avalues)

    def _any_constant(self, etype, hashable):
        """(field, frozenset of strs) when every step of the set's rules that
        can take an event of type `etype` requires that plain field to carry
        one of those strs (`start_constant`): an event of the type carrying
        none of them can neither start nor move a run.  Else (None, None)."""
        field, values = None, set()
        for r in self.rules:
            for s in r.steps:
                if _taker(s, etype, hashable) is False:
                    continue
                where = s.matcher.source.where
                c = start_constant(where) if where is not None else None
                if c is None or len(c[0]) != 1 or (field is not None and c[0][0] != field):
                    return None, None
                field = c[0][0]
                values.update(c[1])
        return (field, frozenset(values)) if field is not None else (None, None)

    def _starter(self, r, full: bool = False):
        """Rule 1's data for `r`: (index, the where still to test, capture
        template, slot count, first slot, list capture, projection, whether the
        first step is also the last)."""
        s0 = r.steps[0]
        where0 = s0.matcher.where if full else r.start_where
        return (r.index, where0, r.caps_template, r.n_slots, s0.slot, s0.is_list, s0.project, len(r.steps) == 1)

    def _complete(self, ri, k, hk, run, end, out):
        """Rule 7 has picked `run`; rule 8 decides whether it is emitted."""
        r = self.by_index[ri]
        rs = self.rstats[ri]
        cd = r.cooldown_ms
        if cd is not None:
            stamps = self.stamps[ri]
            got = stamps.get(hk)
            if got is not None and end - got[0] < cd:
                rs.suppressed += 1  # suppressed matches do not move the reference
                return
            stamps[hk] = (end, k)
            self.cq[ri].append((end + cd, hk, end))
        rs.matches += 1
        key = list(k) if type(k) is list else k
        out.append(Match(r.name, r.output, key, run[2], end, r.emit(run[3], run[2], end, key)))

    # ------------------------------------------------------------ time

    def expire(self, wm: int) -> None:
        """Time moves to `wm`: every run with wm - start > within dies (rule 6),
        and cooldown stamps that can no longer suppress anything go."""
        keys = self.keys
        dwithin = self.dwithin
        within = self.within
        for w, q in self.wq.items():
            lim = wm - w
            while q and q[0][2] < lim:
                dying = q.popleft()
                if dying[1] == DEAD:
                    continue
                hk = dying[5]
                runs = keys[hk]
                keep = []
                for run in runs:
                    # every rule with this within whose run started before lim
                    if run[2] < lim and within[run[0]] == w:
                        dwithin[run[0]] += 1
                        run[1] = DEAD
                    else:
                        keep.append(run)
                if not keep:
                    del keys[hk]
                elif len(keep) != len(runs):
                    keys[hk] = keep
        for ri, q in self.cq.items():
            stamps = self.stamps[ri]
            while q and q[0][0] < wm:
                _, hk, stamp = q.popleft()
                got = stamps.get(hk)
                if got is not None and got[0] == stamp:
                    del stamps[hk]

    def _compact(self) -> None:
        """Drop the within-queue entries whose run has died (most die at their
        key's next event, long before their within): memory follows the live
        runs, amortised O(1) per start."""
        kept = 0
        for q in self.wq.values():
            live = [run for run in q if run[1] != DEAD]
            q.clear()
            q.extend(live)
            kept += len(live)
        self.wlimit = 4 * kept + self.QUEUE_SLACK

    # ------------------------------------------------------------ reading

    def fold(self) -> None:
        """Move the counts kept here into the rules' RuleStats."""
        for r in self.rules:
            ri = r.index
            rs = self.rstats[ri]
            if self.started[ri]:
                rs.runs_started += self.started[ri]
                self.started[ri] = 0
            if self.discarded[ri]:
                rs.discarded += self.discarded[ri]
                self.discarded[ri] = 0
            if self.dnext[ri]:
                rs.died["next"] += self.dnext[ri]
                self.dnext[ri] = 0
            if self.dwithin[ri]:
                rs.died["within"] += self.dwithin[ri]
                self.dwithin[ri] = 0

    def live_runs(self) -> int:
        return sum(map(len, self.keys.values()))

    def states(self):
        """(rule index, hkey, key, [(step, start, caps), ...] in start order,
        stamp or None) for every (rule, key) with live runs or a cooldown
        stamp: what the interpreter would hold as a KeyState."""
        per: dict = {}
        for hk, runs in self.keys.items():
            for ri, p, start, caps, k, _ in runs:
                got = per.get((ri, hk))
                if got is None:
                    per[ri, hk] = [k, [(p, start, caps)], None]
                else:
                    got[1].append((p, start, caps))
        for ri, stamps in self.stamps.items():
            for hk, (stamp, k) in stamps.items():
                got = per.get((ri, hk))
                if got is None:
                    per[ri, hk] = [k, [], stamp]
                else:
                    got[2] = stamp
        for (ri, hk), (k, runs, stamp) in per.items():
            yield ri, hk, k, runs, stamp

    def load(self, ri, hk, k, runs, stamp) -> None:
        """Restore one (rule, key) state (`states`); call `sort_queues` after
        the last."""
        if runs:
            mine = self.keys.setdefault(hk, [])
            w = self.within[ri]
            for p, start, caps in runs:
                run = [ri, p, start, caps, k, hk]
                mine.append(run)
                if w is not None:
                    self.wq[w].append(run)
            mine.sort(key=_start_of_run)
        if stamp is not None:
            self.stamps[ri][hk] = (stamp, k)
            self.cq[ri].append((stamp + self.by_index[ri].cooldown_ms, hk, stamp))

    def sort_queues(self) -> None:
        """After `load`: each queue in time order again."""
        for q in self.wq.values():
            got = sorted(q, key=_start_of_run)
            q.clear()
            q.extend(got)
        for q in self.cq.values():
            got = sorted(q, key=_first)
            q.clear()
            q.extend(got)


def _rule_of_run(run):
    return run[0]


def _start_of_run(run):
    return run[2]


def _first(ent):
    return ent[0]
