"""The 20 shared worked examples (../shared/examples), through `cep replay`.

check.py runs each example in a fresh directory and compares the matches and
the number of dead letters with the expected files; this test fails (never
skips) when the folder is missing or any example fails, and shows check.py's
report.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO.parent / "shared" / "examples"


def test_every_shared_example_passes():
    check = EXAMPLES / "check.py"
    assert check.is_file(), f"the shared examples are missing: no {check}"
    cep = Path(sys.executable).parent / "cep"
    assert cep.is_file(), f"no cep entry point beside {sys.executable}"
    proc = subprocess.run([sys.executable, str(check), "--cep", str(cep)], cwd=REPO,
                          capture_output=True, text=True, timeout=1800, env=dict(os.environ))
    print(proc.stdout)
    print(proc.stderr, file=sys.stderr)
    assert proc.returncode == 0, f"check.py failed:\n{proc.stdout}\n{proc.stderr}"
    assert "20 passed, 0 failed" in proc.stdout, proc.stdout
