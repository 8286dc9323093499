"""bench/run.py --smoke: the benchmark harness still runs end to end and
reports every section with positive figures (no timing is asserted: the
machine may be shared). The replay and the engine alone must also agree on
the number of matches, so the harness never measures a pipeline that
silently matches nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN = os.path.join(ROOT, "bench", "run.py")

HEADINGS = ("## Targets", "## 1. `cep replay`", "## 2. The engine alone", "## 3. Rule scaling",
            "## 4. Key scaling and memory", "## 5. Parallelism", "## 6. Start-up", "## 7. Parsing and checking")


def test_smoke_run_reports_every_section(tmp_path):
    md, raw = tmp_path / "RESULTS.md", tmp_path / "results.json"
    subprocess.run([sys.executable, RUN, "--smoke", "--results", str(md), "--json", str(raw)],
                   check=True, cwd=ROOT, timeout=120, capture_output=True)
    text = md.read_text(encoding="utf-8")
    for heading in HEADINGS:
        assert heading in text, heading
    assert "Model name" in text and "Mem:" in text  # the machine is described
    res = json.loads(raw.read_text(encoding="utf-8"))

    replay = {r["workload"]: r for r in res["replay"]}
    assert replay["floor (no-op matcher)"]["matches"] == 0
    for row in res["replay"]:
        assert row["events"] > 0 and row["eps"] > 0 and row["ratio"] > 0 and row["peak_rss"] > 0
    engine = {r["workload"]: r for r in res["engine"]}
    for name, row in engine.items():
        assert row["matcher_eps"] > 0 and row["engine_eps"] > 0
        assert row["matches"] == replay[name]["matches"] > 0, name
    assert [r["rules"] for r in res["rules"]] == [10]
    assert all(r["eps"] > 0 for r in res["rules"])
    for row in res["keys"]:
        assert row["live_keys"] > 0 and row["live_runs"] >= row["live_keys"] and row["peak_rss"] > 0
    assert [r["setting"] for r in res["parallel"]] == ["--workers 1", "--workers 2", "--processes 2"]
    # every parallel setting writes the same matches (SPEC §3 rule 10)
    assert len({r["matches"] for r in res["parallel"]}) == 1
    assert all(r["eps"] > 0 for r in res["parallel"])
    assert res["startup"]["min"] > 0
    assert res["load"]["rules"] == 50 and res["load"]["total_seconds"] > 0 and res["load"]["cep_check_wall"] > 0
