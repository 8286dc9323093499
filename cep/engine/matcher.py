"""The matcher: SPEC §3 over one timeline, per rule and per key.

Pure Python, no I/O.  Events arrive in timeline order (ts non-decreasing);
`on_event` first resolves every deadline `<= ts` (§3.1 Ties: a deadline and
an event at the same time, the deadline first), then the event.

State per (rule, key) is a `KeyState`: the live runs in start order (so the
earliest start, rule 7, is always the first that completes) and the cooldown
stamp.  Deadlines live in one heap with lazy invalidation: a KeyState has at
most one entry it trusts (`sched`); a window that restarts only moves a
deadline later, so an entry that is early is re-pushed when popped.
"""

from __future__ import annotations

import bisect
import collections
import heapq
import pickle

from cep.compile.program import Program, StepKind, field_getter, start_constant
from cep.engine.chains import ChainSet, bounded_fan_out, hashable_key as _hkey, is_chain
from cep.engine.model import Match, Stats

__all__ = ["Matcher"]

_EVENT = StepKind.EVENT
_IDLE = StepKind.IDLE

# results of stepping one run on one event
_KEEP = 0
_DONE = 1
_DIE_NOT = "not"
_DIE_IDLE = "idle"
_DIE_NO = "no"
_DIE_NEXT = "next"

# 2: projected captures keep only the fields their rule reads (not the events
# a version-1 snapshot holds)
_SNAPSHOT_VERSION = 2


class Run:
    """A partial match (§3 rule 1): its current step, how many events that
    step has taken, its captures, its start, and its absence window."""

    __slots__ = ("pos", "c", "start", "anchor", "deadline", "caps")

    def __init__(self, pos, c, start, anchor, deadline, caps):
        self.pos = pos
        self.c = c
        self.start = start
        self.anchor = anchor  # where the open absence window starts: last event taken or last deadline
        self.deadline = deadline  # the open window's deadline, or None
        self.caps = caps

    def __getstate__(self):
        return (self.pos, self.c, self.start, self.anchor, self.deadline, self.caps)

    def __setstate__(self, st):
        self.pos, self.c, self.start, self.anchor, self.deadline, self.caps = st


class KeyState:
    """Runs of one rule for one key, in start order, and its cooldown stamp."""

    __slots__ = ("rule", "key", "hkey", "runs", "stamp", "sched", "wsched")

    def __init__(self, rule, key, hkey):
        self.rule = rule  # rule index
        self.key = key  # JSON value
        self.hkey = hkey  # hashable form
        self.runs: list[Run] = []
        self.stamp = None  # completion time of the last emitted match (rule 8)
        self.sched = None  # the deadline this state has in the heap
        self.wsched = None  # the within expiry this state has in the within heap

    def __getstate__(self):
        return (self.rule, self.key, self.hkey, self.runs, self.stamp, self.sched, self.wsched)

    def __setstate__(self, st):
        self.rule, self.key, self.hkey, self.runs, self.stamp, self.sched, self.wsched = st


def _each(states):
    """The KeyStates of one key in a group index entry (one, or a list)."""
    return (states,) if states.__class__ is KeyState else states


class _DeferSet:
    """Rules whose runs an event starts *deferred* (see `Matcher._defer`): each
    starts with one event, `next` to an event step with min >= 1, and no `not`
    between, so a run it starts at event e0 lives exactly until the key's next
    event e1: it moves on if e1 satisfies step 2, else it dies (`next`, or
    `within` when e1 is too late).  Instead of one run per rule, the key keeps
    one `_Pending` that names this set; at e1 only the rules whose second step
    the index says e1 may satisfy become real runs.  Interned: one per set of
    rule indexes (`Matcher._dset`)."""

    __slots__ = ("rules", "idx", "ws", "rank", "minw", "types1", "started", "deaths", "shrunk", "split", "step1")

    def __init__(self, rules, idx, parent=None):
        self.rules = rules  # tuple of CompiledRule, in rule order
        self.idx = idx  # frozenset of their indexes
        if parent is not None:
            # a subset of `parent` (`Matcher._subset`) shares what is computed
            # over the rules: a superset's answers are right for a subset (the
            # ranks are of the same `ws`; a smaller `minw` and more `types1`
            # only let a few more checks through)
            self.ws, self.rank, self.minw, self.types1 = parent.ws, parent.rank, parent.minw, parent.types1
        else:
            # the distinct finite `within`s, sorted: a gap g kills by rule 6 exactly
            # the rules whose within is < g, i.e. whose rank is < bisect_left(ws, g)
            self.ws = sorted({r.within_ms for r in rules if r.within_ms is not None})
            self.rank = {r.index: (bisect.bisect_left(self.ws, r.within_ms) if r.within_ms is not None
                                   else len(self.ws)) for r in rules}
            self.minw = self.ws[0] if self.ws else None
            # the event types a second step can take (None: any)
            types = [r.steps[1].matcher.types for r in rules]
            self.types1 = None if any(t is None for t in types) else frozenset().union(*types)
        # statistics not yet folded into the rules' RuleStats (`Matcher._fold`):
        # runs started per rule, and (survivors, j) -> how many times every
        # other rule's run died (`within` if its rank < j, else `next`)
        self.started = 0
        self.deaths: dict = {}
        self.shrunk: dict = {}  # j -> the set left when rule 6 kills the ranks < j
        self.split: dict = {}  # rules with a live state -> `Matcher._split_live`'s answer
        self.step1: dict = {}  # event type -> `Matcher._step1` for this set (`Matcher._set_step1`)


class _Pending:
    """Deferred runs of one key and key group: started by the event at `ts`."""

    __slots__ = ("ts", "ev", "k", "hk", "dset")

    def __init__(self, ts, ev, k, hk, dset):
        self.ts = ts
        self.ev = ev
        self.k = k
        self.hk = hk
        self.dset = dset


class _Parking:
    """Parked first runs (`Matcher._make_park`): per rule whether it parks
    (`able`) and hkey -> (start, what its capture keeps of its event, key) of
    the one run a key has, not yet made real (`parked`, None for a rule that
    does not park; `dicts`, those that do); per distinct within a FIFO of
    (start + within, rule index, hkey, start) (`queues`; `queue`, per rule):
    starts come in time order, so each queue is sorted.  One attribute of
    the Matcher, not five: see `Matcher.__init__`."""

    __slots__ = ("able", "parked", "dicts", "queue", "queues")

    def __init__(self, rules, able):
        self.able = able
        self.parked: list[dict | None] = [{} if p else None for p in able]
        self.dicts = tuple(pr for pr in self.parked if pr is not None)
        qs: dict = {}
        self.queue = [qs.setdefault(r.within_ms, collections.deque()) if p and r.within_ms is not None else None
                      for r, p in zip(rules, able)]
        self.queues = tuple(qs.values())


class _Plan:
    """What an event of one type does to one key group: which of its rules it
    can affect (`aff`, indexed by rule), which it may start (`always`: every
    event of the type may; `consts`: only events whose field carries the
    first step's constant), and the group's live (rule, key) states."""

    __slots__ = ("g", "key_of", "kname", "active", "aff", "always", "cname", "ctable", "consts",
                 "pend", "dnone", "dname", "dtable", "aname", "chain", "interp")

    def __init__(self, g, key_fields, key_of, active, aff, always, consts, pend, dnone, dname, dtable, aname,
                 chain, interp):
        self.g = g
        # the group's chain rules (`cep.engine.chains`): their handler for this
        # type, or None; and whether any interpreted rule is affected at all
        self.chain = chain
        self.interp = interp
        self.key_of = key_of
        # a key of one plain field is read inline: no call per event
        self.kname = key_fields[0][0] if len(key_fields) == 1 and len(key_fields[0]) == 1 else None
        self.active = active  # hkey -> KeyState, or [KeyState, ...] in rule order (Matcher._gk)
        # per rule: True (every event of the type may affect its runs), False,
        # the frozenset of str values the field `aname` must carry for the
        # event to satisfy any of the rule's matchers (else it is a no-op), or
        # for a parkable rule the first step's minimum (`_awake`)
        self.aff = aff
        self.aname = aname
        self.always = always  # tuple of CompiledRule, in rule order
        # ((path, {value: tuple of CompiledRule}), ...); the first, when its
        # path is one plain field, is read inline (cname, ctable)
        self.cname = self.ctable = None
        if consts and len(consts[0][0]) == 1:
            self.cname = consts[0][0][0]
            self.ctable = consts[0][1]
            consts = consts[1:]
        self.consts = tuple((field_getter(path), table) for path, table in consts)
        # deferred starts (_DeferSet): the group's pending runs (hkey ->
        # _Pending), the set every event of the type starts (`dnone`), and per
        # value of the field `dname` the set an event carrying it starts
        self.pend = pend
        self.dnone = dnone
        self.dname = dname
        self.dtable = dtable


def _first_run(r, ts, ev) -> Run:
    """Rule 1: the run `ev` starts, its first step having taken `ev`."""
    return _run_of(r, ts, _captured(r, ev))


def _captured(r, ev):
    """What the first step's capture keeps of `ev` (None without a capture)."""
    s0 = r.steps[0]
    if s0.slot < 0:
        return None
    pj = s0.project  # a projected capture keeps only the fields the rule reads
    return ev if pj is None else pj(ev)


def _run_of(r, ts, x) -> Run:
    """The run started at `ts` by an event of which its capture keeps `x`."""
    # a rule without captures shares one empty tuple: nothing writes it
    caps = list(r.caps_template) if r.n_slots else ()
    s0 = r.steps[0]
    if s0.slot >= 0:
        caps[s0.slot] = [x] if s0.is_list else x
    return Run(0, 1, ts, ts, None, caps)


def _compact_trusted(heap: list, attr: str) -> None:
    """Keep the entries (time, seq, KeyState) that their state trusts (its
    `attr` is that time) and that still have runs; a state whose trusted
    entry goes forgets it (`attr` back to None), as popping it would."""
    keep = []
    for ent in heap:
        ks = ent[2]
        if getattr(ks, attr) == ent[0]:
            if ks.runs:
                keep.append(ent)
            else:
                setattr(ks, attr, None)
    heap[:] = keep  # in place: a loop popping this heap may be running
    heapq.heapify(heap)


def _awake(ks, low: int) -> bool:
    """Whether a visit to `ks` can change it, for a parkable rule whose first
    step needs `low` events: no when it has no runs (a cooldown stamp only)
    or its runs are all at that step below `low` (the first, the oldest, has
    taken the most)."""
    runs = ks.runs
    return bool(runs) and (runs[0].c >= low or runs[0].pos != 0)


def _rule_of(ks):
    return ks.rule


def _union(a, b):
    return tuple(sorted(set(a) | set(b), key=lambda r: r.index))


class Matcher:
    """Runs a Program over one timeline.  See docs/architecture.md."""

    # a heap is compacted when it holds more entries than 1.25 x the live
    # (rule, key) states plus this: amortised O(1) per push, and stale entries
    # (states dropped before their within / deadline / cooldown time) cannot
    # pile up in memory
    COMPACT_SLACK = 256

    # CPython 3.11 keeps an object's attributes inline, with specialised fast
    # loads, only while its class's shared key table holds fewer than 30 names
    # (SHARED_KEYS_MAX_SIZE): at 30, every `self.x` of the hot path got slower
    # (P3 through the engine: -6%, measured).  So cold state is grouped into
    # one attribute (`_Parking`) instead of adding attributes; the count is
    # held by tests/engine/test_matcher_layout.py.
    MAX_ATTRIBUTES = 27

    def __init__(self, program: Program, max_runs_per_key: int = 1000, type_field: str = "type",
                 chains: bool = True):
        self.program = program
        self.max_runs_per_key = max_runs_per_key
        self.type_field = type_field
        self._etype = field_getter(tuple(type_field.split(".")))
        # per group: hkey -> its KeyState when the key has state in one rule of
        # the group (the common case: no list per key), else [KeyState, ...] in rule order
        self._gk: list[dict] = [{} for _ in program.key_groups]
        self._dl: list = []  # deadlines: (time, seq, KeyState)
        self._wx: list = []  # within expiries: (start + within, seq, KeyState)
        # states whose within expiry (`wsched`) is not in `_wx` yet: only
        # on_time reads `_wx` (an event checks rule 6 inline), so a state is
        # pushed there only if it still has runs when time next moves: most
        # runs die at their key's next event (`next`), long before
        self._wpend: list = []
        self._cx: list = []  # cooldown expiries: (stamp + cooldown, seq, KeyState)
        self._seq = 0
        self._nstates = 0  # (rule, key) states alive: bounds the heaps' stale entries
        self._stats = Stats()
        for r in program.rules:
            self._stats.rule(r.name)
        self._rstats = [self._stats.rules[r.name] for r in program.rules]
        # per key group: its chain rules, matched without the interpreter
        # (`cep.engine.chains`), or None; `chains=False` interprets every rule
        # (the tests hold the two paths to each other)
        self._chains: list[ChainSet | None] = [None] * len(program.key_groups)
        if chains:
            for kg in program.key_groups:
                mine = bounded_fan_out([program.rules[ri] for ri in kg.rules
                                        if is_chain(program.rules[ri], max_runs_per_key)])
                if mine:
                    self._chains[kg.index] = cs = ChainSet(mine, len(program.rules), self._rstats)
                    if (len(mine) == len(program.rules) and "." not in type_field and len(kg.fields) == 1
                            and len(kg.fields[0]) == 1):
                        cs.solo = (type_field, kg.fields[0][0])
        # deferred starts (_DeferSet, _Pending): which rules may defer, the
        # interned sets, per group the pending runs by hkey, and the last
        # watermark (rule 6 for pending runs is applied when they are read)
        self._deferrable = [self._can_defer(r) for r in program.rules]
        # per deferrable rule: its second step's (field path, constants); per
        # event type, the index of every deferrable rule's second step (`_step1`)
        self._step1s: dict = {}
        self._const1 = [start_constant(r.steps[1].source.matcher.where)
                        if d and r.steps[1].source.matcher.where is not None else None
                        for r, d in zip(program.rules, self._deferrable)]
        self._dsets: dict = {}
        self._pend: list[dict] = [{} for _ in program.key_groups]
        # per group: hkey -> how many states of deferrable rules the key has
        # (only such a key can need `_split_live`)
        self._dlive: list[dict] = [{} for _ in program.key_groups]
        self._wm = None
        # per key group: type -> tuple of _Plan (a dict per group: no tuple key
        # to build and hash per event)
        self._plans: list[dict] = [{} for _ in program.key_groups]
        self._plans0: dict = {}  # type -> tuple of _Plan, for group None
        # per rule, per step: the specialised §3 rules 2-4 for a run at that step
        self._steppers = [tuple(self._make_stepper(r, st) for st in r.steps) for r in program.rules]
        self._park = _Parking(program.rules, [self._can_park(r) for r in program.rules])
        # per rule: rule 1 for a key without state, when starting cannot
        # complete or open a window (`_make_park`, `_make_fresh`), else None
        self._fresh = self._make_starters()
        self._tf = type_field if "." not in type_field else None  # read inline when not dotted

    # ------------------------------------------------------------------ API

    @property
    def stats(self) -> Stats:
        """The statistics so far (deferred starts and chain rules folded in)."""
        self._expire_pending()
        self._fold()
        for cs in self._chains:
            if cs is not None:
                cs.fold()
        return self._stats

    @property
    def live_runs(self) -> int:
        self._expire_pending()
        return (sum(len(ks.runs) for d in self._gk for lst in d.values() for ks in _each(lst))
                + sum(len(pe.dset.rules) for pend in self._pend for pe in pend.values())
                + sum(len(pr) for pr in self._park.parked if pr)
                + sum(cs.live_runs() for cs in self._chains if cs is not None))

    def census(self) -> dict:
        """Live keys, (rule, key) states and runs, deferred ones included, for
        benchmarks and metrics: nothing is materialised to count them."""
        self._expire_pending()
        keys = set()
        states = runs = 0
        for d in self._gk:
            keys.update(d)
            for lst in d.values():
                for ks in _each(lst):
                    states += 1
                    runs += len(ks.runs)
        for pend in self._pend:
            keys.update(pend)
            for pe in pend.values():
                states += len(pe.dset.rules)
                runs += len(pe.dset.rules)
        for pr in self._park.parked:
            if pr:
                keys.update(pr)
                states += len(pr)
                runs += len(pr)
        for cs in self._chains:
            if cs is not None:
                for _, hk, _, cruns, _ in cs.states():
                    keys.add(hk)
                    states += 1
                    runs += len(cruns)
        return {"live_keys": len(keys), "live_states": states, "live_runs": runs}

    @property
    def _states(self) -> list[dict]:
        """Per rule: hkey -> KeyState (a view; the matcher indexes states by key
        group).  Deferred runs are made real first."""
        self._materialise_all()
        out: list[dict] = [{} for _ in self.program.rules]
        for d in self._gk:
            for lst in d.values():
                for ks in _each(lst):
                    out[ks.rule][ks.hkey] = ks
        # chain rules: built as the interpreter would hold them (a chain run's
        # window anchor is never read: its start stands in)
        for cs in self._chains:
            if cs is not None:
                for ri, hk, k, runs, stamp in cs.states():
                    ks = KeyState(ri, k, hk)
                    ks.runs = [Run(p, 1, start, start, None, caps) for p, start, caps in runs]
                    ks.stamp = stamp
                    out[ri][hk] = ks
        return out

    def describe_runs(self):
        """(rule index, key, start, step index, taken, deadline) per live run, for `cep test`."""
        for states in self._states:
            for ks in states.values():
                for run in ks.runs:
                    yield (ks.rule, ks.key, run.start, run.pos, run.c, run.deadline)

    def on_event(self, ts: int, event: dict, group: int | None = None) -> list[Match]:
        """Resolve every deadline <= ts, then the event.  With `group` the event
        goes only to the rules of that key group, and is not counted in
        matched_against / irrelevant (the caller counts it once)."""
        out: list[Match] = []
        self.on_batch(((ts, 0, 0, group, event),), out)
        return out

    def on_batch(self, entries, out: list) -> None:
        """`on_event` for each `(ts, _, _, group, event)` of `entries`, in
        order, appending the matches to `out`: the replay shard's own tuples
        (the two middle items order ties; ignored here).  One call per batch
        instead of one per event, and the loop's invariants loaded once: the
        call, the result list and a dozen attribute loads were 7% of a P1
        replay (bench/PROFILE.md section 9)."""
        solo = self._chains[0] if self._chains else None
        if solo is not None and solo.solo is not None:
            # chain rules only (P1, P3): no plans, deadlines or cooldown heap
            rel, irr = solo.on_batch(entries, out, *solo.solo)
            if rel or irr:
                self._stats.matched_against += rel
                self._stats.irrelevant += irr
            return
        dl = self._dl
        cx = self._cx
        tf = self._tf
        plans0 = self._plans0
        plans_g = self._plans
        dlive = self._dlive
        fresh = self._fresh
        rules = self.program.rules
        for ts, _, _, group, event in entries:
            if dl and dl[0][0] <= ts:
                self._advance(ts, out)
            if cx and cx[0][0] < ts:
                self._expire_stamps(ts)
            etype = event.get(tf) if tf is not None else self._etype(event)
            try:
                plans = plans0.get(etype) if group is None else plans_g[group].get(etype)
            except TypeError:  # an unhashable type value: no type-named rule can use it
                plans = self._plan(group, etype, cache=False)
            if plans is None:
                plans = self._plan(group, etype)
            relevant = False
            for pl in plans:
                kn = pl.kname
                k = event.get(kn) if kn is not None else pl.key_of(event)
                if k is None:
                    continue
                relevant = True
                hk = k if k.__class__ is str else _hkey(k)
                ch = pl.chain
                if ch is not None:
                    ch(k, hk, ts, event, out)
                    if not pl.interp:
                        continue
                starters = pl.always
                cn = pl.cname
                if cn is not None:
                    v = event.get(cn)
                    if v.__class__ is str:
                        more = pl.ctable.get(v)
                        if more is not None:
                            starters = _union(starters, more) if starters else more
                if pl.consts:
                    for getter, table in pl.consts:
                        v = getter(event)
                        if v.__class__ is str:
                            more = table.get(v)
                            if more is not None:
                                starters = _union(starters, more) if starters else more
                # deferred starts (_DeferSet): first the runs this key's previous
                # event left pending meet their next event, then this event's own
                ds = pl.dnone
                dn = pl.dname
                if dn is not None:
                    v = event.get(dn)
                    if v.__class__ is str:
                        more = pl.dtable.get(v)
                        if more is not None:
                            ds = more
                pend = pl.pend
                if pend:
                    pe = pend.pop(hk, None)
                    if pe is not None:
                        self._resolve(pe, ts, event, etype)
                lst = pl.active.get(hk)
                if ds is not None:
                    if lst is not None and hk in dlive[pl.g]:
                        ds, now = self._split_live(ds, lst)
                        if now:
                            starters = _union(starters, now) if starters else now
                    if ds is not None:
                        pend[hk] = _Pending(ts, event, k, hk, ds)
                        ds.started += 1
                if lst is None:
                    for r in starters:
                        f = fresh[r.index]
                        if f is None:
                            self._on_rule_event(r, None, k, hk, ts, event, etype, out, True)
                        else:
                            ks = f(k, hk, ts, event)
                            if ks is not None:  # a parked run made real: step it
                                self._on_rule_event(r, ks, k, hk, ts, event, etype, out, True)
                    continue
                aff = pl.aff
                an = pl.aname
                av = event.get(an) if an is not None else None
                if av.__class__ is not str:
                    av = None  # no constant is carried: only the True entries
                if not starters:
                    if lst.__class__ is KeyState:
                        ks = lst
                        a = aff[ks.rule]
                        if a is True or (a and (av in a if a.__class__ is frozenset else _awake(ks, a))):
                            self._on_rule_event(rules[ks.rule], ks, k, hk, ts, event, etype, out, False)
                    else:
                        for ks in tuple(lst):  # a visit may drop its state from the list
                            a = aff[ks.rule]
                            if a is True or (a and (av in a if a.__class__ is frozenset else _awake(ks, a))):
                                self._on_rule_event(rules[ks.rule], ks, k, hk, ts, event, etype, out, False)
                    continue
                # live states and starters, both in rule order: merge, each rule once
                i = 0
                live = (lst,) if lst.__class__ is KeyState else tuple(lst)
                n = len(live)
                for r in starters:
                    ri = r.index
                    while i < n and live[i].rule < ri:
                        ks = live[i]
                        a = aff[ks.rule]
                        if a is True or (a and (av in a if a.__class__ is frozenset else _awake(ks, a))):
                            self._on_rule_event(rules[ks.rule], ks, k, hk, ts, event, etype, out, False)
                        i += 1
                    if i < n and live[i].rule == ri:
                        self._on_rule_event(r, live[i], k, hk, ts, event, etype, out, True)
                        i += 1
                    else:
                        f = fresh[ri]
                        if f is None:
                            self._on_rule_event(r, None, k, hk, ts, event, etype, out, True)
                        else:
                            ks = f(k, hk, ts, event)
                            if ks is not None:  # a parked run made real: step it
                                self._on_rule_event(r, ks, k, hk, ts, event, etype, out, True)
                while i < n:
                    ks = live[i]
                    a = aff[ks.rule]
                    if a is True or (a and (av in a if a.__class__ is frozenset else _awake(ks, a))):
                        self._on_rule_event(rules[ks.rule], ks, k, hk, ts, event, etype, out, False)
                    i += 1
            if group is None:
                if relevant:
                    self._stats.matched_against += 1
                else:
                    self._stats.irrelevant += 1

    def on_time(self, wm: int) -> list[Match]:
        """Move time to `wm`: resolve every deadline <= wm, then every run of
        every key with wm - start > within dies (rule 6)."""
        out: list[Match] = []
        if self._wm is None or wm > self._wm:
            self._wm = wm
        if self._dl and self._dl[0][0] <= wm:
            self._advance(wm, out)
        if self._wpend:
            self._flush_within()
        if self._park.queues:
            self._expire_parked(wm)
        for cs in self._chains:
            if cs is not None:
                cs.expire(wm)
        wx = self._wx
        rules = self.program.rules
        while wx and wx[0][0] < wm:
            e, _, ks = heapq.heappop(wx)
            if ks.wsched != e:
                continue
            ks.wsched = None
            r = rules[ks.rule]
            self._within(r, ks, wm)
            if ks.runs:
                self._sched_within(r, ks)
            else:
                self._maybe_drop(ks)
        if self._cx and self._cx[0][0] < wm:
            self._expire_stamps(wm)
        return out

    def snapshot(self) -> bytes:
        states = self._states  # deferred runs made real: a snapshot holds only real runs
        if self._wpend:
            self._flush_within()
        state = (_SNAPSHOT_VERSION, self.max_runs_per_key, self.type_field, states, self._dl, self._wx,
                 self._cx, self._seq, self.stats)
        return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def restore(cls, program: Program, data: bytes, chains: bool = True) -> Matcher:
        version, cap, type_field, states, dl, wx, cx, seq, stats = pickle.loads(data)
        if version != _SNAPSHOT_VERSION:
            raise ValueError(f"matcher snapshot version {version} is not {_SNAPSHOT_VERSION}")
        if len(states) != len(program.rules):
            raise ValueError("the snapshot was taken with a different rule set")
        m = cls(program, cap, type_field, chains=chains)
        chained = [m._chained(r) for r in program.rules]
        # a chain rule's states go to its ChainSet; the heaps keep only the
        # interpreter's entries (a snapshot may come from a matcher that
        # interpreted the rule: the formats are the same)
        dl, wx, cx = ([ent for ent in h if not chained[ent[2].rule]] for h in (dl, wx, cx))
        for h in (dl, wx, cx):
            heapq.heapify(h)
        m._dl, m._wx, m._cx, m._seq, m._stats = dl, wx, cx, seq, stats
        stamped = {id(ent[2]) for ent in cx}
        for ri, d in enumerate(states):
            if chained[ri]:
                cs = m._chains[program.rules[ri].group]
                for hk, ks in d.items():
                    cs.load(ri, hk, ks.key, [(run.pos, run.start, run.caps) for run in ks.runs], ks.stamp)
                continue
            r = program.rules[ri]
            gk = m._gk[r.group]
            for hk, ks in d.items():
                m._index_state(gk, hk, ks)
                m._nstates += 1
                if m._deferrable[ri]:
                    dl = m._dlive[r.group]
                    dl[hk] = dl.get(hk, 0) + 1
                # a state a ChainSet held has no heap entries: schedule rule 6
                # and the stamp's expiry as the interpreter would have
                if r.within_ms is not None and ks.runs and ks.wsched is None:
                    m._sched_within(r, ks)
                if r.cooldown_ms is not None and ks.stamp is not None and id(ks) not in stamped:
                    m._seq += 1
                    heapq.heappush(m._cx, (ks.stamp + r.cooldown_ms, m._seq, ks))
        for r in program.rules:
            stats.rule(r.name)
        m._rstats = [stats.rules[r.name] for r in program.rules]
        m._fresh = m._make_starters()  # they hold the rules' RuleStats
        for cs in m._chains:
            if cs is not None:
                cs.rstats = m._rstats
                cs.sort_queues()
        return m

    def _chained(self, r) -> bool:
        """Whether rule `r` is matched by its group's ChainSet."""
        cs = self._chains[r.group]
        return cs is not None and r.index in cs.by_index

    # ------------------------------------------------------------ routing

    def _plan(self, group, etype, cache: bool = True) -> tuple[_Plan, ...]:
        prog = self.program
        hashable = type(etype) is str or etype is None
        out = []
        for kg in prog.key_groups:
            if group is not None and kg.index != group:
                continue
            aff = [False] * len(prog.rules)
            always = []
            consts: dict = {}
            dalways: list = []  # deferrable starters (_DeferSet) of every event of the type
            dname = None  # the one plain field whose value picks more deferrable starters
            dconsts: dict = {}
            aconsts: dict = {}  # rule index -> (field, values) (`_type_constants`)
            any_aff = False
            cs = self._chains[kg.index]
            if cs is not None and cs.parts(etype) is False:
                cs = None  # the type touches none of the group's chain rules (one-step rules only)
            for ri in kg.rules:
                r = prog.rules[ri]
                if self._chained(r):
                    continue  # a chain rule: the ChainSet's handler below
                if not (r.all_types or (hashable and etype in r.types)):
                    continue
                aff[ri] = any_aff = True
                if not r.all_types:
                    c = self._type_constants(r, etype)
                    if c is not None:
                        aconsts[ri] = c
                types0 = r.steps[0].matcher.types
                if types0 is not None and not (hashable and etype in types0):
                    continue  # its first step cannot take this type
                if self._deferrable[ri]:
                    if r.start_const is None:
                        dalways.append(r)
                        continue
                    path, values = r.start_const
                    if len(path) == 1 and (dname is None or path[0] == dname):
                        dname = path[0]
                        for value in values:
                            dconsts.setdefault(value, []).append(r)
                        continue
                if r.start_const is None:
                    always.append(r)
                else:
                    path, values = r.start_const
                    table = consts.setdefault(path, {})
                    for value in values:  # distinct: the rule is in each entry once
                        table.setdefault(value, []).append(r)
            if not any_aff and cs is None:
                continue
            # the live states of a rule whose every matcher naming this type
            # requires a constant are visited only by events carrying one
            aname = None
            if aconsts:
                aname = collections.Counter(f for f, _ in aconsts.values()).most_common(1)[0][0]
                for ri, (f, values) in aconsts.items():
                    if f == aname:
                        aff[ri] = values
            # a parkable rule's runs that are all below its first step's minimum
            # react only to starters (`_can_park`) and rule 6 (`on_time`): an
            # int entry asks `_awake` before the visit
            for ri in kg.rules:
                if aff[ri] is True and self._park.able[ri]:
                    aff[ri] = prog.rules[ri].steps[0].min
            dnone = self._dset(dalways) if dalways else None
            dtable = {v: self._dset(dalways + rs) for v, rs in dconsts.items()}
            out.append(_Plan(kg.index, kg.fields, prog.key_getters[kg.index], self._gk[kg.index], aff,
                             tuple(always),
                             tuple((path, {v: tuple(rs) for v, rs in table.items()}) for path, table in consts.items()),
                             self._pend[kg.index], dnone, dname if dtable else None, dtable, aname,
                             cs.handler(etype) if cs is not None else None, any_aff))
        plans = tuple(out)
        cache_ = self._plans0 if group is None else self._plans[group]
        if cache and len(cache_) < 100_000:
            cache_[etype] = plans
        return plans

    @staticmethod
    def _type_constants(r, etype):
        """(field, frozenset of strs) when every matcher of rule `r` that can take
        an event of type `etype` (event and `no` steps, `not` guards) has a
        top-level conjunct `field == "s"` or `field in [strs]` on one plain
        field: an event of the type whose field is none of those strs
        satisfies none of them, and for a rule without `next`, `idle` and
        `any` (all_types) such an event changes no run (rule 2: skipped; rules
        3 and 4 kill only on satisfying events).  Else None."""
        field, values = None, set()
        for s in r.steps:
            for m in ((s.matcher,) if s.matcher is not None else ()) + s.wait_guards + s.pre_guards:
                if m.types is None:
                    return None
                if etype not in m.types:
                    continue
                where = m.source.where
                c = start_constant(where) if where is not None else None
                if c is None or len(c[0]) != 1 or (field is not None and c[0][0] != field):
                    return None
                field = c[0][0]
                values.update(c[1])
        return None if field is None else (field, frozenset(values))

    # ------------------------------------------------------------ deferred starts

    def _can_defer(self, r) -> bool:
        """Whether rule 1 may start `r`'s runs deferred (_DeferSet): its first step
        takes exactly one event (so a new run is at its minimum and maximum),
        the index alone proves the first step, and `next` leads to an event step
        with min >= 1 with no `not` between: by rule 2 the run then lives until
        the key's next event, which either satisfies step 2 or kills it."""
        st = r.steps
        if len(st) < 2 or self.max_runs_per_key < 1 or r.start_where is not None or self._chained(r):
            return False
        s0, s1 = st[0], st[1]
        return (s0.kind == _EVENT and s0.min == 1 and s0.max == 1 and s0.next_kills and not s0.wait_guards
                and not s0.final and s0.window < 0 and s1.kind == _EVENT and s1.min >= 1 and not s1.pre_guards)

    def _dset(self, rules) -> _DeferSet:
        rules = tuple(sorted(set(rules), key=lambda r: r.index))
        idx = frozenset(r.index for r in rules)
        ds = self._dsets.get(idx)
        if ds is None:
            ds = self._dsets[idx] = _DeferSet(rules, idx)
        return ds

    def _subset(self, ds, rules) -> _DeferSet:
        """The interned set of `rules`, a part of `ds` in rule order."""
        idx = frozenset(r.index for r in rules)
        got = self._dsets.get(idx)
        if got is None:
            got = self._dsets[idx] = _DeferSet(rules, idx, ds)
        return got

    def _split_live(self, ds, lst):
        """The rules of `ds` that already have a state for the key start their run
        the ordinary way (rules 7 and 8 read that state): (what stays
        deferred or None, those rules in rule order)."""
        idx = ds.idx
        if lst.__class__ is KeyState:
            if lst.rule not in idx:
                return ds, ()
            now = (lst.rule,)
        else:
            now = tuple(ks.rule for ks in lst if ks.rule in idx)
            if not now:
                return ds, ()
        got = ds.split.get(now)
        if got is None:
            rest = tuple(r for r in ds.rules if r.index not in now)
            got = ((self._subset(ds, rest) if rest else None), tuple(self.program.rules[i] for i in now))
            if len(ds.split) < 1000:
                ds.split[now] = got
        return got

    def _resolve(self, pe, ts, ev, etype):
        """`ev` is the key's next event after the deferred runs of `pe`: the rules
        whose second step it may satisfy (by the second steps' index) become
        real runs, which the caller steps like any other; every other run dies:
        of rule 6 if `ev` is more than its within after the start, else of
        `next` (rule 2, third bullet)."""
        ds = pe.dset
        gap = ts - pe.ts
        ws = ds.ws
        j = bisect.bisect_left(ws, gap) if ws else 0
        try:
            plan = ds.step1.get(etype)
        except TypeError:  # an unhashable type value
            plan = None
        if plan is None:
            plan = self._set_step1(ds, etype)
        cands, name, table, exact = plan
        if name is not None:
            v = ev.get(name)
            if v.__class__ is str:
                more = table.get(v)
                if more is not None:
                    if not exact:
                        idx = ds.idx
                        more = [r for r in more if r.index in idx]
                    if more:
                        cands = _union(cands, more) if cands else more
        alive = ()
        if cands:
            made = []
            ev0 = pe.ev
            for r in cands:
                w = r.within_ms
                if w is None or gap <= w:
                    self._make_real(r, pe.k, pe.hk, pe.ts, _captured(r, ev0))
                    made.append(r.index)
            alive = tuple(made)
        d = ds.deaths
        key = (alive, j)
        d[key] = d.get(key, 0) + 1

    def _set_step1(self, ds, etype):
        """`_step1` for the rules of one deferred set: (the rules of the set any
        event of the type may satisfy, field, {value: rules}, whether those
        rules are all in the set), cached in the set."""
        try:
            plan = self._step1s.get(etype)
        except TypeError:  # an unhashable type value
            plan = None
        if plan is None:
            plan = self._step1(etype)
        always, always_idx, name, table = plan
        t1 = ds.types1
        if t1 is not None and not ((etype.__class__ is str or etype is None) and etype in t1):
            always, name = (), None  # no second step of the set takes the type: all die
        idx = ds.idx
        if len(always) <= len(ds.rules):  # filter from the shorter side
            mine = tuple(r for r in always if r.index in idx)
        else:
            mine = tuple(r for r in ds.rules if r.index in always_idx)
        # whether every rule the table names is in the set (then a hit needs no
        # filtering: the one set of a rule set's deferrable rules, as in P1)
        exact = name is None or all(r.index in idx for rs in table.values() for r in rs)
        got = (mine, name, table, exact)
        if (etype.__class__ is str or etype is None) and len(ds.step1) < 1000:
            ds.step1[etype] = got
        return got

    def _step1(self, etype):
        """The index of the second steps of every deferrable rule for one event
        type: (rules any event of the type may satisfy, their indexes, field,
        {value: rules}), in rule order.  One index for all deferred sets:
        `_set_step1` keeps the candidates of one set (the sets are many:
        every rule with a live state for the key is taken out of one)."""
        hashable = etype.__class__ is str or etype is None
        always, name, table = [], None, {}
        for r, d in zip(self.program.rules, self._deferrable):
            if not d:
                continue
            m = r.steps[1].matcher
            if m.types is not None and not (hashable and etype in m.types):
                continue  # cannot satisfy step 2: dies
            c = self._const1[r.index]
            if c is not None and len(c[0]) == 1 and (name is None or c[0][0] == name):
                name = c[0][0]
                for v in c[1]:
                    table.setdefault(v, []).append(r)
            else:
                always.append(r)
        plan = (tuple(always), frozenset(r.index for r in always), name if table else None,
                {v: tuple(rs) for v, rs in table.items()})
        if hashable and len(self._step1s) < 10_000:
            self._step1s[etype] = plan
        return plan

    def _materialise(self, r, pe):
        """One deferred run of `pe` as a real run, exactly as rule 1 would have
        made it (its start is already counted); the rule has no state for
        the key (`_split_live`), and no event of the key came since."""
        self._make_real(r, pe.k, pe.hk, pe.ts, _captured(r, pe.ev))

    def _make_real(self, r, k, hk, t0, x) -> KeyState:
        """The state of rule `r` for a key that has none, holding the run that
        an event at `t0` started and that nothing has changed since (a
        deferred or parked run; its start is already counted); its capture
        keeps `x` of that event (`_captured`)."""
        # `_new_state`, `_run_of` and `_await_within` inlined, as in the
        # closure of `_make_fresh`: every deferred run that goes on and every
        # parked run that gets its second event comes here (P3 through the
        # engine: 4 % faster than the three calls, measured paired)
        ri = r.index
        ks = KeyState(ri, k, hk)
        caps = list(r.caps_template) if r.n_slots else ()
        s0 = r.steps[0]
        if s0.slot >= 0:
            caps[s0.slot] = [x] if s0.is_list else x
        ks.runs.append(Run(0, 1, t0, t0, None, caps))
        self._nstates += 1
        g = r.group
        gk = self._gk[g]
        if hk in gk:
            self._index_state(gk, hk, ks)
        else:
            gk[hk] = ks
        if self._deferrable[ri]:
            dl = self._dlive[g]
            dl[hk] = dl.get(hk, 0) + 1
        w = r.within_ms
        if w is not None:
            ks.wsched = t0 + w
            wp = self._wpend
            wp.append(ks)
            if len(wp) > self._nstates + (self._nstates >> 2) + self.COMPACT_SLACK:
                self._flush_within()
        return ks

    def _await_within(self, ks, expiry):
        """Rule 6: `ks` (no within expiry scheduled) expires at `expiry` if it
        still has runs when time next moves (`_wpend`)."""
        ks.wsched = expiry
        wp = self._wpend
        wp.append(ks)
        if len(wp) > self._nstates + (self._nstates >> 2) + self.COMPACT_SLACK:
            self._flush_within()

    def _materialise_all(self):
        self._expire_pending()
        for pend in self._pend:
            for pe in pend.values():
                for r in pe.dset.rules:
                    self._materialise(r, pe)
            pend.clear()
        rules = self.program.rules
        for ri, pr in enumerate(self._park.parked):
            if pr:
                r = rules[ri]
                for hk, (t0, x, k) in pr.items():
                    self._make_real(r, k, hk, t0, x)
                pr.clear()
        for q in self._park.queues:
            q.clear()

    def _expire_pending(self):
        """Rule 6 for deferred runs, applied whenever they are read: a pending run
        whose within the last watermark has passed has died (an event of its
        key would have found it dead of `within` too, since events come at or
        after the watermark)."""
        wm = self._wm
        if wm is None:
            return
        for pend in self._pend:
            gone = []
            for hk, pe in pend.items():
                ds = pe.dset
                if ds.minw is None or wm - pe.ts <= ds.minw:
                    continue
                j = bisect.bisect_left(ds.ws, wm - pe.ts)
                keep = ds.shrunk.get(j)
                if keep is None:
                    rest = tuple(r for r in ds.rules if ds.rank[r.index] >= j)
                    keep = ds.shrunk[j] = self._subset(ds, rest) if rest else False
                key = (keep.idx if keep else (), j)
                ds.deaths[key] = ds.deaths.get(key, 0) + 1
                if keep:
                    pe.dset = keep
                else:
                    gone.append(hk)
            for hk in gone:
                del pend[hk]

    def _fold(self):
        """Move the deferred sets' counts into the rules' statistics."""
        rstats = self._rstats
        n_rules = len(rstats)
        started = [0] * n_rules
        within = [0] * n_rules
        nxt = [0] * n_rules
        for ds in self._dsets.values():
            if ds.started:
                n = ds.started
                for r in ds.rules:
                    started[r.index] += n
                ds.started = 0
            if ds.deaths:
                # per j: how many times every rule's run died, less the times
                # a rule was among the survivors (a few of ~170 rules)
                total: dict = {}
                spared: dict = {}
                for (alive, j), n in ds.deaths.items():
                    total[j] = total.get(j, 0) + n
                    for ri in alive:
                        spared[ri, j] = spared.get((ri, j), 0) + n
                rank = ds.rank
                for r in ds.rules:
                    ri = r.index
                    rk = rank[ri]
                    for j, n in total.items():
                        if spared:
                            n -= spared.get((ri, j), 0)
                        if rk < j:
                            within[ri] += n
                        else:
                            nxt[ri] += n
                ds.deaths.clear()
        # plain lists above, one Counter update per rule here: a thousand
        # rules in a few hundred sets make ~10^5 additions
        for ri in range(n_rules):
            rs = rstats[ri]
            if started[ri]:
                rs.runs_started += started[ri]
            if within[ri]:
                rs.died["within"] += within[ri]
            if nxt[ri]:
                rs.died["next"] += nxt[ri]

    # ------------------------------------------------------------ events

    def _on_rule_event(self, r, ks, k, hk, ts, ev, etype, out, can_start):
        """One event for one rule and key: step the live runs (`ks`, or None
        when the key has no state), then rule 1 if the plan says the first
        step may take the event (`can_start`)."""
        ri = r.index
        done = None
        discarded = 0  # completed runs that lost rule 7
        rs = self._rstats[ri]
        within = r.within_ms
        if ks is not None:
            runs = ks.runs
            if runs:
                if within is not None and runs[0].start < ts - within:
                    self._within(r, ks, ts)  # rule 6 (runs are in start order)
                adv = self._steppers[ri]
                if len(runs) == 1:
                    run = runs[0]
                    res = adv[run.pos](run, ts, ev, etype, k, ks)
                    if res is not _KEEP:
                        runs.clear()
                        if res is _DONE:
                            done = run
                        else:
                            rs.died[res] += 1
                else:
                    w = 0
                    for run in runs:
                        res = adv[run.pos](run, ts, ev, etype, k, ks)
                        if res is _KEEP:
                            runs[w] = run
                            w += 1
                        elif res is _DONE:
                            if done is None:
                                done = run  # runs are in start order: the earliest start (rule 7)
                            else:
                                discarded += 1
                        else:
                            rs.died[res] += 1
                    del runs[w:]
        # rule 1: an event that satisfies the first step starts a new run; the
        # plan has checked the first step's type (and constant)
        if can_start:
            s0 = r.steps[0]
            where0 = r.start_where  # the plan has checked the first step's constant
            if where0 is None or where0(ev, r.caps_template, ts, ts, k):
                rs.runs_started += 1
                if ks is None:
                    ks = self._new_state(r, k, hk)
                # the cap counts every run still alive at this point, the ones
                # that just completed included
                if len(ks.runs) + (done is not None) + discarded >= self.max_runs_per_key:
                    rs.died["cap"] += 1
                else:
                    run = _first_run(r, ts, ev)
                    res = self._settle(r, ks, run, s0)
                    if res is _DONE:
                        if done is None:
                            done = run
                        else:
                            discarded += 1  # rule 7: including the run the same event would start
                    else:
                        ks.runs.append(run)
                        if within is not None and ks.wsched is None:
                            self._await_within(ks, ks.runs[0].start + within)
        if ks is None:
            return
        if done is not None:
            discarded += len(ks.runs)
            ks.runs.clear()
            rs.discarded += discarded
            self._complete(r, ks, done, ts, out)
        if not ks.runs:
            self._maybe_drop(ks)

    def _new_state(self, r, k, hk) -> KeyState:
        ks = KeyState(r.index, k, hk)
        self._nstates += 1
        self._index_state(self._gk[r.group], hk, ks)
        if self._deferrable[r.index]:
            dl = self._dlive[r.group]
            dl[hk] = dl.get(hk, 0) + 1
        return ks

    @staticmethod
    def _index_state(gk, hk, ks):
        cur = gk.get(hk)
        if cur is None:
            gk[hk] = ks
        elif cur.__class__ is KeyState:
            gk[hk] = [cur, ks] if cur.rule < ks.rule else [ks, cur]
        elif cur[-1].rule < ks.rule:
            cur.append(ks)
        else:
            bisect.insort(cur, ks, key=_rule_of)

    # ------------------------------------------------------------ parked first runs

    def _can_park(self, r) -> bool:
        """Whether rule 1 may *park* `r`'s runs (`_make_park`): its first step
        needs at least two events and the index alone proves it.  A run that
        has taken one event is then below the step's minimum, so by rules 2-4
        only an event satisfying the first step (one that would also start a
        run: the index's starters) or rule 6 can change it: no look ahead, no
        `not`, no `next`, no window (§3.1)."""
        s0 = r.steps[0]
        return (self.max_runs_per_key >= 1 and s0.kind == _EVENT and s0.min >= 2 and r.start_where is None
                and not self._chained(r))

    def _make_starters(self):
        return [self._make_park(r) if self._park.able[r.index] else self._make_fresh(r) for r in self.program.rules]

    def _make_park(self, r):
        """Rule 1 for a key without state for a parkable rule (`_can_park`).  Most
        such runs never see a second event of their first step (a product
        page viewed once) and die of `within`; so the first run of a key is
        kept as (start, capture, key) in `_Parking.parked`, with no KeyState, no Run, and no
        visit by the key's other events, and is made real only when another
        event satisfies the first step: then the caller steps it like any
        live state (it takes the event; rule 1 starts the next run).  Returns
        that state, or None."""
        ri = r.index
        rs = self._rstats[ri]
        within = r.within_ms
        pr = self._park.parked[ri]
        q = self._park.queue[ri]
        make_real = self._make_real
        s0 = r.steps[0]
        slot, pj = s0.slot, s0.project

        def park(k, hk, ts, ev):
            got = pr.get(hk)
            if got is not None:
                del pr[hk]
                if within is None or got[0] >= ts - within:
                    return make_real(r, k, hk, got[0], got[1])
                rs.died["within"] += 1  # rule 6; this event starts the next run
            # what the capture keeps, not the event: a parked run lives for
            # its window, and most of an event is not read by the rule
            pr[hk] = (ts, None if slot < 0 else ev if pj is None else pj(ev), k)
            rs.runs_started += 1
            if q is not None:
                q.append((ts + within, ri, hk, ts))
            return None

        return park

    def _expire_parked(self, wm):
        """Rule 6 for parked runs: every one with wm - start > within dies.  An
        entry whose run was made real (or replaced) since is passed over: the
        parked run's start tells them apart (a replacement with the same
        start expires at the same time)."""
        parked = self._park.parked
        dead: dict = {}  # rule index -> parked runs that died here
        n = 0
        for q in self._park.queues:
            while q and q[0][0] < wm:
                _, ri, hk, t0 = q.popleft()
                pr = parked[ri]
                got = pr.get(hk)
                if got is not None and got[0] == t0:
                    del pr[hk]
                    dead[ri] = dead.get(ri, 0) + 1
            n += len(q)
        rstats = self._rstats
        for ri, d in dead.items():
            rstats[ri].died["within"] += d
        # entries of runs made real before their expiry wait for it; when they
        # outnumber the parked runs, drop them so memory follows the live runs
        if n > self.COMPACT_SLACK and n > 2 * sum(map(len, self._park.dicts)):
            for q in self._park.queues:
                keep = [ent for ent in q if (got := parked[ent[1]].get(ent[2])) is not None and got[0] == ent[3]]
                q.clear()
                q.extend(keep)

    def _make_fresh(self, r):
        """Rule 1 for a key that has no state for `r`, specialised at start-up:
        exactly `_on_rule_event(r, None, ..., can_start=True)` for a first step
        where one event neither completes the rule nor opens an absence
        window (min > 1, or a later step with min >= 1 before any absence
        step), so no rule 5, 7 or 8 and no deadline: test the where, make the
        state and its run, schedule rule 6.  None for the other rules."""
        s0 = r.steps[0]
        if self.max_runs_per_key < 1 or (s0.min <= 1 and (s0.final or s0.window >= 0)):
            return None
        ri = r.index
        rs = self._rstats[ri]
        where0 = r.start_where
        tmpl, n_slots = r.caps_template, r.n_slots
        slot, is_list, pj = s0.slot, s0.is_list, s0.project
        within = r.within_ms
        gk = self._gk[r.group]
        dlive = self._dlive[r.group] if self._deferrable[ri] else None
        index_state = self._index_state

        # `_first_run` and `_await_within` inlined: this is the hot path of rule 1
        def fresh(k, hk, ts, ev):
            if where0 is not None and not where0(ev, tmpl, ts, ts, k):
                return
            rs.runs_started += 1
            caps = list(tmpl) if n_slots else ()
            if slot >= 0:
                x = ev if pj is None else pj(ev)
                caps[slot] = [x] if is_list else x
            ks = KeyState(ri, k, hk)
            ks.runs.append(Run(0, 1, ts, ts, None, caps))
            self._nstates += 1
            if hk in gk:
                index_state(gk, hk, ks)
            else:
                gk[hk] = ks
            if dlive is not None:
                dlive[hk] = dlive.get(hk, 0) + 1
            if within is not None:
                ks.wsched = ts + within
                wp = self._wpend
                wp.append(ks)
                if len(wp) > self._nstates + (self._nstates >> 2) + self.COMPACT_SLACK:
                    self._flush_within()

        return fresh

    def _make_stepper(self, r, s):
        """§3 rules 2-4 for a run at step `s`, specialised at start-up on the
        step's shape: `f(run, ts, ev, etype, key, ks) -> _KEEP | _DONE | reason`.
        The branches are those of the generic reading below, in the same order;
        only what the step's shape makes impossible is left out."""
        steps = r.steps
        settle = self._settle
        if s.kind != _EVENT:
            # waiting inside the window of an absence step that follows another
            # absence step (§3.1 "Two absence steps in a row")
            pre = tuple((g.types, g.where) for g in s.pre_guards)
            idle = s.kind == _IDLE
            wtypes, wwhere = (None, None) if idle else (s.matcher.types, s.matcher.where)

            def absence(run, ts, ev, etype, key, ks):
                for types, where in pre:
                    if (types is None or etype in types) and (where is None or where(ev, run.caps, run.start, ts, key)):
                        return _DIE_NOT
                if idle:
                    return _DIE_IDLE
                if (wtypes is None or etype in wtypes) and (wwhere is None or wwhere(ev, run.caps, run.start, ts, key)):
                    return _DIE_NO
                return _KEEP

            return absence

        mn, mx = s.min, s.max
        wait = tuple((g.types, g.where) for g in s.wait_guards)
        pre = tuple((g.types, g.where) for g in s.pre_guards)
        # rule 2, first bullet: the look passes over min-0 steps and stops at an
        # absence step or after the first step with min > 0
        look = []
        j = s.index + 1
        while j < len(steps) and steps[j].kind == _EVENT:
            t = steps[j]
            look.append((t, t.index, t.matcher.types, t.matcher.where, t.slot, t.is_list,
                         t.final and t.min <= 1, t.project))
            if t.min > 0:
                break
            j += 1
        look = tuple(look)
        own_types, own_where = s.matcher.types, s.matcher.where
        slot, is_list, proj = s.slot, s.is_list, s.project
        next_kills = s.next_kills
        c0_next = s.connector == "next"  # only a run at c == 0 (after an absence step) reads it
        win = steps[s.window] if s.window >= 0 else None
        win_idle = win is not None and win.kind == _IDLE
        win_types, win_where = (win.matcher.types, win.matcher.where) if win is not None and not win_idle \
            else (None, None)

        def event_step(run, ts, ev, etype, key, ks):
            c = run.c
            caps = run.caps
            at_min = c >= mn
            if at_min:
                # rule 3 (§3.1: absolute, checked before anything the event could do)
                for types, where in wait:
                    if (types is None or etype in types) and (where is None or where(ev, caps, run.start, ts, key)):
                        return _DIE_NOT
                if c == 0:
                    # §3.1: a `not` after an absence step applies until the next
                    # event step takes its first event
                    for types, where in pre:
                        if (types is None or etype in types) and (
                                where is None or where(ev, caps, run.start, ts, key)):
                            return _DIE_NOT
                # rule 2, first bullet: moving on beats staying
                for t, ti, types, where, tslot, tlist, done, tproj in look:
                    if (types is None or etype in types) and (where is None or where(ev, caps, run.start, ts, key)):
                        run.pos = ti
                        run.c = 1
                        run.anchor = ts
                        run.deadline = None
                        if tslot >= 0:
                            x = ev if tproj is None else tproj(ev)
                            caps[tslot] = [x] if tlist else x
                        if done:
                            return _DONE
                        return settle(r, ks, run, t)
            elif c == 0:
                # §3.1: a `not` after an absence step applies until the next
                # event step takes its first event
                for types, where in pre:
                    if (types is None or etype in types) and (where is None or where(ev, caps, run.start, ts, key)):
                        return _DIE_NOT
            # rule 2, second bullet (§3.1 greedy steps); also restarts the
            # absence window before rule 4 could kill (§3.1)
            if c < mx and (own_types is None or etype in own_types) and (
                    own_where is None or own_where(ev, caps, run.start, ts, key)):
                run.c = c + 1
                run.anchor = ts
                if slot >= 0:
                    x = ev if proj is None else proj(ev)
                    if is_list:
                        lst = caps[slot]
                        if lst is None:
                            caps[slot] = [x]
                        else:
                            lst.append(x)
                    else:
                        caps[slot] = x
                return settle(r, ks, run, s)
            if at_min:
                # rule 2, third bullet (`next` into an absence step adds nothing, §3.1)
                if next_kills:
                    return _DIE_NEXT
                if c == 0 and c0_next:
                    return _DIE_NEXT
                # the event is skipped by rule 2; rule 4 decides inside an open window
                if win is not None:
                    if win_idle:
                        return _DIE_IDLE
                    if (win_types is None or etype in win_types) and (
                            win_where is None or win_where(ev, caps, run.start, ts, key)):
                        return _DIE_NO
            elif c == 0 and c0_next:
                # §3.1: after an absence step, `next` means the first event after
                # the deadline must satisfy this step (or one the look reaches)
                return _DIE_NEXT
            return _KEEP

        return event_step

    def _settle(self, r, ks, run, s):
        """After step `s` took an event: complete (rule 5, §3.1 trailing min-0
        steps) or (re)open the absence window that follows (rule 4)."""
        if run.c >= s.min:
            if s.final:
                return _DONE
            if s.window >= 0:
                d = run.anchor + r.steps[s.window].duration_ms
                run.deadline = d
                if ks.sched is None or d < ks.sched:
                    self._push_deadline(ks, d)
        return _KEEP

    # ------------------------------------------------------------ deadlines

    def _push_deadline(self, ks, d):
        ks.sched = d
        self._seq += 1
        heapq.heappush(self._dl, (d, self._seq, ks))
        if len(self._dl) > self._nstates + (self._nstates >> 2) + self.COMPACT_SLACK:
            self._compact()

    def _advance(self, limit, out):
        """Resolve every deadline <= limit, in time order."""
        dl = self._dl
        rules = self.program.rules
        while dl and dl[0][0] <= limit:
            d, _, ks = heapq.heappop(dl)
            if ks.sched != d:
                continue  # superseded by an earlier entry
            ks.sched = None
            m = None
            for run in ks.runs:
                rd = run.deadline
                if rd is not None and (m is None or rd < m):
                    m = rd
            if m is None:
                continue
            if m > d:
                self._push_deadline(ks, m)  # the window restarted: come back later
                continue
            self._deadline_point(rules[ks.rule], ks, d, out)

    def _deadline_point(self, r, ks, t, out):
        """The point of the timeline at deadline t for one rule and key."""
        ri = r.index
        rs = self._rstats[ri]
        if r.within_ms is not None:
            self._within(r, ks, t)
        runs = ks.runs
        done = None
        discarded = 0
        w = 0
        for run in runs:
            if run.deadline is not None and run.deadline <= t:
                res = self._pass_absence(r, ks, run, t)
                if res is _DONE:
                    if done is None:
                        done = run
                    else:
                        discarded += 1
                    continue
            runs[w] = run
            w += 1
        del runs[w:]
        if done is not None:
            discarded += len(runs)
            runs.clear()
            rs.discarded += discarded
            self._complete(r, ks, done, t, out)
        if runs:
            m = min((run.deadline for run in runs if run.deadline is not None), default=None)
            if m is not None and (ks.sched is None or m < ks.sched):
                self._push_deadline(ks, m)
        else:
            self._maybe_drop(ks)

    def _pass_absence(self, r, ks, run, d):
        """The open window's deadline d is reached: the absence step is satisfied
        (rule 4); the run moves past it (§3.1 "After an absence step")."""
        steps = r.steps
        s = steps[run.pos]
        p = (s.index if s.kind != _EVENT else s.window) + 1
        run.anchor = d
        run.deadline = None
        n = len(steps)
        if p == n:
            return _DONE  # a trailing absence completes at its deadline
        t = steps[p]
        run.pos = p
        run.c = 0
        if t.kind != _EVENT:
            # §3.1: two absence steps in a row: the second window starts at the
            # first one's deadline
            run.deadline = d + t.duration_ms
            if ks.sched is None or run.deadline < ks.sched:
                self._push_deadline(ks, run.deadline)
            return _KEEP
        if t.min == 0:
            if t.final:
                return _DONE
            if t.window >= 0:
                run.deadline = d + steps[t.window].duration_ms
                if ks.sched is None or run.deadline < ks.sched:
                    self._push_deadline(ks, run.deadline)
        return _KEEP

    # ------------------------------------------------------------ rules 6-8

    def _within(self, r, ks, t):
        """Rule 6: every run with t - start > within dies.  Runs are in start
        order, so those are a prefix."""
        runs = ks.runs
        lim = t - r.within_ms
        n = 0
        for run in runs:
            if run.start < lim:
                n += 1
            else:
                break
        if n:
            del runs[:n]
            self._rstats[r.index].died["within"] += n

    def _flush_within(self):
        """Push the pending within expiries of the states that still have runs;
        a state without runs forgets its expiry, as `_compact` would."""
        pend = self._wpend
        self._wpend = []
        wx = self._wx
        push = heapq.heappush
        for ks in pend:
            if ks.runs:
                self._seq += 1
                push(wx, (ks.wsched, self._seq, ks))
            else:
                ks.wsched = None
        if len(wx) > self._nstates + (self._nstates >> 2) + self.COMPACT_SLACK:
            self._compact()

    def _sched_within(self, r, ks):
        e = ks.runs[0].start + r.within_ms
        ks.wsched = e
        self._seq += 1
        heapq.heappush(self._wx, (e, self._seq, ks))
        if len(self._wx) > self._nstates + (self._nstates >> 2) + self.COMPACT_SLACK:
            self._compact()

    def _complete(self, r, ks, run, end, out):
        """Rule 7 has picked `run`; rule 8 decides whether it is emitted."""
        rs = self._rstats[r.index]
        cd = r.cooldown_ms
        if cd is not None:
            if ks.stamp is not None and end - ks.stamp < cd:
                rs.suppressed += 1  # suppressed matches do not move the reference
                return
            ks.stamp = end
            self._seq += 1
            heapq.heappush(self._cx, (end + cd, self._seq, ks))
            if len(self._cx) > self._nstates + (self._nstates >> 2) + self.COMPACT_SLACK:
                self._compact()
        rs.matches += 1
        key = ks.key
        if type(key) is list:
            key = list(key)
        out.append(Match(r.name, r.output, key, run.start, end, r.emit(run.caps, run.start, end, key)))

    def _expire_stamps(self, now):
        """Drop cooldown stamps that can no longer suppress anything."""
        cx = self._cx
        rules = self.program.rules
        while cx and cx[0][0] < now:
            e, _, ks = heapq.heappop(cx)
            if ks.stamp is None or ks.stamp + rules[ks.rule].cooldown_ms != e:
                continue
            ks.stamp = None
            if not ks.runs:
                self._maybe_drop(ks)

    def _compact(self):
        """Drop the heap entries that would do nothing when popped: superseded
        ones, and those of states without runs (they hold dropped states in
        memory).  An entry a state trusts is forgotten with it (`sched` /
        `wsched` back to None), exactly as popping it would; so only memory
        changes, never what resolves when."""
        rules = self.program.rules
        _compact_trusted(self._dl, "sched")
        _compact_trusted(self._wx, "wsched")
        keep = [ent for ent in self._cx
                if ent[2].stamp is not None and ent[2].stamp + rules[ent[2].rule].cooldown_ms == ent[0]]
        self._cx[:] = keep  # in place: a loop popping this heap may be running
        heapq.heapify(self._cx)

    def _maybe_drop(self, ks):
        """A key with no live run keeps only its cooldown stamp."""
        if ks.stamp is None:
            g = self.program.rules[ks.rule].group
            gk = self._gk[g]
            cur = gk.get(ks.hkey)
            if cur is ks:
                del gk[ks.hkey]
            elif cur.__class__ is list and ks in cur:
                cur.remove(ks)
                if len(cur) == 1:
                    gk[ks.hkey] = cur[0]  # back to the one-state form
            else:
                return
            self._nstates -= 1
            if self._deferrable[ks.rule]:
                dl = self._dlive[g]
                n = dl[ks.hkey] - 1
                if n:
                    dl[ks.hkey] = n
                else:
                    del dl[ks.hkey]
