"""The benchmark suite stays runnable: bench/crl_100k.py with a small count prints its table."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_crl_bench_runs_and_prints_its_table():
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "crl_100k.py"), "--count", "2000", "--ocsp-requests", "50",
         "--key-type", "ec-p256"],
        capture_output=True, text=True, timeout=600, cwd=ROOT, env=env,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "CRL for 2,000 revoked certificates" in output, output
    rows = {}
    for line in result.stdout.splitlines():
        match = re.match(r"^(baseline|crl_generate)\b.*?\s([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)$", line)
        if match:
            rows[match[1]] = [float(value) for value in match.groups()[1:]]
    assert set(rows) == {"baseline", "crl_generate"}, output
    assert rows["baseline"][2:] == [1.0, 1.0]  # the ratios are against the baseline
    seconds, mib, time_ratio, memory_ratio = rows["crl_generate"]
    assert seconds > 0 and mib > 0
    # Streaming tuples must need clearly less memory than 2,000 model instances.
    assert memory_ratio < 0.8, output
    match = re.search(r"answered 50 requests at ([\d,]+) responses/s", output)
    assert match and int(match[1].replace(",", "")) > 0, output
