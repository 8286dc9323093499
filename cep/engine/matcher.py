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

import heapq
import pickle
import orjson

from cep.compile.program import Program, StepKind, field_getter
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


def _hkey(k):
    """A hashable form of a key that keeps JSON types apart (1, 1.0, true, "1")."""
    if type(k) is str:
        return k
    try:
        return orjson.dumps(k, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        # beyond what orjson writes (an int over 64 bits): still one key per value
        return ("repr", type(k).__name__, repr(k))


class _Plan:
    """What an event of one type does to one key group: which of its rules it
    can affect (`aff`, indexed by rule), which it may start (`always`: every
    event of the type may; `consts`: only events whose field carries the
    first step's constant), and the group's live (rule, key) states."""

    __slots__ = ("g", "key_of", "kname", "active", "aff", "always", "cname", "ctable", "consts")

    def __init__(self, g, key_fields, key_of, active, aff, always, consts):
        self.g = g
        self.key_of = key_of
        # a key of one plain field is read inline: no call per event
        self.kname = key_fields[0][0] if len(key_fields) == 1 and len(key_fields[0]) == 1 else None
        self.active = active  # hkey -> KeyState, or [KeyState, ...] in rule order (Matcher._gk)
        self.aff = aff
        self.always = always  # tuple of CompiledRule, in rule order
        # ((path, {value: tuple of CompiledRule}), ...); the first, when its
        # path is one plain field, is read inline (cname, ctable)
        self.cname = self.ctable = None
        if consts and len(consts[0][0]) == 1:
            self.cname = consts[0][0][0]
            self.ctable = consts[0][1]
            consts = consts[1:]
        self.consts = tuple((field_getter(path), table) for path, table in consts)


def _union(a, b):
    return tuple(sorted(set(a) | set(b), key=lambda r: r.index))


class Matcher:
    """Runs a Program over one timeline.  See docs/architecture.md."""

    # a heap is compacted when it holds more entries than 1.25 x the live
    # (rule, key) states plus this: amortised O(1) per push, and stale entries
    # (states dropped before their within / deadline / cooldown time) cannot
    # pile up in memory
    COMPACT_SLACK = 256

    def __init__(self, program: Program, max_runs_per_key: int = 1000, type_field: str = "type"):
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
        self.stats = Stats()
        for r in program.rules:
            self.stats.rule(r.name)
        self._rstats = [self.stats.rules[r.name] for r in program.rules]
        self._plans: dict = {}  # (group, type) -> tuple of _Plan
        self._plans0: dict = {}  # type -> tuple of _Plan, for group None
        # per rule, per step: the specialised §3 rules 2-4 for a run at that step
        self._steppers = [tuple(self._make_stepper(r, st) for st in r.steps) for r in program.rules]
        self._tf = type_field if "." not in type_field else None  # read inline when not dotted

    # ------------------------------------------------------------------ API

    @property
    def live_runs(self) -> int:
        return sum(len(ks.runs) for d in self._gk for lst in d.values() for ks in _each(lst))

    @property
    def _states(self) -> list[dict]:
        """Per rule: hkey -> KeyState (a view; the matcher indexes states by key group)."""
        out: list[dict] = [{} for _ in self.program.rules]
        for d in self._gk:
            for lst in d.values():
                for ks in _each(lst):
                    out[ks.rule][ks.hkey] = ks
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
        dl = self._dl
        if dl and dl[0][0] <= ts:
            self._advance(ts, out)
        cx = self._cx
        if cx and cx[0][0] < ts:
            self._expire_stamps(ts)
        tf = self._tf
        etype = event.get(tf) if tf is not None else self._etype(event)
        try:
            plans = self._plans0.get(etype) if group is None else self._plans.get((group, etype))
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
            lst = pl.active.get(hk)
            if lst is None:
                for r in starters:
                    self._on_rule_event(r, None, k, hk, ts, event, etype, out, True)
                continue
            aff = pl.aff
            rules = self.program.rules
            if not starters:
                if lst.__class__ is KeyState:
                    ks = lst
                    if aff[ks.rule]:
                        self._on_rule_event(rules[ks.rule], ks, k, hk, ts, event, etype, out, False)
                else:
                    for ks in tuple(lst):  # a visit may drop its state from the list
                        if aff[ks.rule]:
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
                    if aff[ks.rule]:
                        self._on_rule_event(rules[ks.rule], ks, k, hk, ts, event, etype, out, False)
                    i += 1
                if i < n and live[i].rule == ri:
                    self._on_rule_event(r, live[i], k, hk, ts, event, etype, out, True)
                    i += 1
                else:
                    self._on_rule_event(r, None, k, hk, ts, event, etype, out, True)
            while i < n:
                ks = live[i]
                if aff[ks.rule]:
                    self._on_rule_event(rules[ks.rule], ks, k, hk, ts, event, etype, out, False)
                i += 1
        if group is None:
            if relevant:
                self.stats.matched_against += 1
            else:
                self.stats.irrelevant += 1
        return out

    def on_time(self, wm: int) -> list[Match]:
        """Move time to `wm`: resolve every deadline <= wm, then every run of
        every key with wm - start > within dies (rule 6)."""
        out: list[Match] = []
        if self._dl and self._dl[0][0] <= wm:
            self._advance(wm, out)
        if self._wpend:
            self._flush_within()
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
        if self._wpend:
            self._flush_within()
        state = (_SNAPSHOT_VERSION, self.max_runs_per_key, self.type_field, self._states, self._dl, self._wx,
                 self._cx, self._seq, self.stats)
        return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def restore(cls, program: Program, data: bytes) -> Matcher:
        version, cap, type_field, states, dl, wx, cx, seq, stats = pickle.loads(data)
        if version != _SNAPSHOT_VERSION:
            raise ValueError(f"matcher snapshot version {version} is not {_SNAPSHOT_VERSION}")
        if len(states) != len(program.rules):
            raise ValueError("the snapshot was taken with a different rule set")
        m = cls(program, cap, type_field)
        m._dl, m._wx, m._cx, m._seq, m.stats = dl, wx, cx, seq, stats
        for ri, d in enumerate(states):
            gk = m._gk[program.rules[ri].group]
            for hk, ks in d.items():
                m._index_state(gk, hk, ks)
                m._nstates += 1
        for r in program.rules:
            stats.rule(r.name)
        m._rstats = [stats.rules[r.name] for r in program.rules]
        return m

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
            any_aff = False
            for ri in kg.rules:
                r = prog.rules[ri]
                if not (r.all_types or (hashable and etype in r.types)):
                    continue
                aff[ri] = any_aff = True
                types0 = r.steps[0].matcher.types
                if types0 is not None and not (hashable and etype in types0):
                    continue  # its first step cannot take this type
                if r.start_const is None:
                    always.append(r)
                else:
                    path, values = r.start_const
                    table = consts.setdefault(path, {})
                    for value in values:  # distinct: the rule is in each entry once
                        table.setdefault(value, []).append(r)
            if not any_aff:
                continue
            out.append(_Plan(kg.index, kg.fields, prog.key_getters[kg.index], self._gk[kg.index], aff,
                             tuple(always),
                             tuple((path, {v: tuple(rs) for v, rs in table.items()}) for path, table in consts.items())))
        plans = tuple(out)
        cache_ = self._plans0 if group is None else self._plans
        if cache and len(cache_) < 100_000:
            cache_[etype if group is None else (group, etype)] = plans
        return plans

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
                    # a rule without captures shares one empty tuple: nothing writes it
                    caps = list(r.caps_template) if r.n_slots else ()
                    if s0.slot >= 0:
                        pj = s0.project  # a projected capture keeps only the fields the rule reads
                        x = ev if pj is None else pj(ev)
                        if s0.is_list:
                            caps[s0.slot] = [x]
                        else:
                            caps[s0.slot] = x
                    run = Run(0, 1, ts, ts, None, caps)
                    res = self._settle(r, ks, run, s0)
                    if res is _DONE:
                        if done is None:
                            done = run
                        else:
                            discarded += 1  # rule 7: including the run the same event would start
                    else:
                        ks.runs.append(run)
                        if within is not None and ks.wsched is None:
                            ks.wsched = ks.runs[0].start + within
                            wp = self._wpend
                            wp.append(ks)
                            if len(wp) > self._nstates + (self._nstates >> 2) + self.COMPACT_SLACK:
                                self._flush_within()
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
        return ks

    @staticmethod
    def _index_state(gk, hk, ks):
        cur = gk.get(hk)
        if cur is None:
            gk[hk] = ks
        elif cur.__class__ is KeyState:
            gk[hk] = [cur, ks] if cur.rule < ks.rule else [ks, cur]
        else:
            cur.append(ks)
            if cur[-2].rule > ks.rule:
                cur.sort(key=lambda x: x.rule)

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
        keep = []
        for ent in self._dl:
            ks = ent[2]
            if ks.sched == ent[0]:
                if ks.runs:
                    keep.append(ent)
                else:
                    ks.sched = None
        self._dl[:] = keep  # in place: a loop popping this heap may be running
        heapq.heapify(self._dl)
        keep = []
        for ent in self._wx:
            ks = ent[2]
            if ks.wsched == ent[0]:
                if ks.runs:
                    keep.append(ent)
                else:
                    ks.wsched = None
        self._wx[:] = keep  # in place: a loop popping this heap may be running
        heapq.heapify(self._wx)
        keep = [ent for ent in self._cx
                if ent[2].stamp is not None and ent[2].stamp + rules[ent[2].rule].cooldown_ms == ent[0]]
        self._cx[:] = keep  # in place: a loop popping this heap may be running
        heapq.heapify(self._cx)

    def _maybe_drop(self, ks):
        """A key with no live run keeps only its cooldown stamp."""
        if ks.stamp is None:
            gk = self._gk[self.program.rules[ks.rule].group]
            cur = gk.get(ks.hkey)
            if cur is ks:
                del gk[ks.hkey]
                self._nstates -= 1
            elif cur.__class__ is list and ks in cur:
                cur.remove(ks)
                if len(cur) == 1:
                    gk[ks.hkey] = cur[0]  # back to the one-state form
                self._nstates -= 1
