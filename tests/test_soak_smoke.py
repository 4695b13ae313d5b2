"""CI's 30-second version of the mixed soak (targets.md F): a leak check, not a timing test.

``python -m bench.soak --duration 30`` starts its own service and scripted upstream on
loopback, runs the mix (streams, JSON answers, disconnects, upstream errors and resets),
and exits 0 only when every answer was as expected, no slot was left in use, RSS grew at
most 5 % after the warm-up and the idle RSS is at most 120 MiB. Nothing here depends on
how fast the machine is: a noisy machine runs fewer requests, not wrong ones.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow  # ~50 s: the soak itself


def test_soak_30_seconds(tmp_path: Path) -> None:
    result_file = tmp_path / "soak.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.soak", "--duration", "30", "--json", str(result_file)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = proc.stdout + proc.stderr
    assert result_file.exists(), report
    result = json.loads(result_file.read_text())
    # Hard checks: every answer as expected, every slot back, no growth (a leak).
    assert result["functional_ok"], report
    assert result["growth"] <= 0.05, report
    # The worker's idle size (targets F): the agent stack and the tokenizer load only when
    # needed (gateway.agent_runtime, providers.tokens), which is what keeps it under.
    assert result["idle_rss_kib"] <= 120 * 1024, report
    assert proc.returncode == 0, report
