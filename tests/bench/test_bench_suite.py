"""`make bench` stays runnable: bench/run.py --quick prints its table and writes its figures.

The shape of the output only, and that every ratio is a number in (0, inf): no timing
assertion (the machine may be busy; the ratios are for the README, not for the suite).
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# What `make bench` runs by default but http (tests/bench/test_bench_http.py); the workers and scale
# have their own tests too (tests/lifecycle/test_issuance_scaling.py, tests/bench/test_bench_scale.py).
DEFAULT = ["issuance", "pkcs12", "ocsp", "crl", "revocation", "audit", "ldap"]
NAMES = {
    "crl_300",
    "issuance_ec_p256",
    "issuance_rsa_3072",
    "pkcs12_modern_rsa_3072",
    "pkcs12_compatible_rsa_3072",
    "ocsp_in_process",
    "ocsp_http",
    "revocation_cost",
    "audit_changelist",
    "ldap_publish_ratio",
}


def test_the_quick_suite_prints_a_table_of_ratios_and_writes_them_as_json(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "PORTAL_BROKER_URL")}
    figures_file = tmp_path / "figures.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--json", str(figures_file), "--only", *DEFAULT],
        capture_output=True, text=True, timeout=600, cwd=ROOT, env=env,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output

    figures = json.loads(figures_file.read_text())
    assert figures["quick"] is True and figures["database"] in ("sqlite", "postgresql")
    assert figures["audit_chain_intact"] is True
    assert set(figures["ratios"]) == NAMES, figures["ratios"]
    for name, ratio in figures["ratios"].items():
        assert isinstance(ratio, float) and 0 < ratio < math.inf, (name, ratio)
    for row in figures["results"]:
        assert row["raw_per_second"] > 0 and row["portal_per_second"] > 0 and row["rounds"] == 2
        assert math.isclose(row["ratio"], row["portal_per_second"] / row["raw_per_second"])

    # The table: one row per benchmark with raw, portal and ratio; then the same ratios as one JSON line.
    rows = {}
    for line in result.stdout.splitlines():
        match = re.match(r"^(\w+)\s+([\d,.]+)\s+([\d,.]+)\s+([\d.]+)\s+\S", line)
        if match and match[1] in NAMES:
            rows[match[1]] = float(match[4])
    assert set(rows) == NAMES, result.stdout
    for name, ratio in rows.items():
        assert math.isclose(ratio, figures["ratios"][name], abs_tol=0.0005), (name, ratio)
    assert json.loads(result.stdout.strip().splitlines()[-1]) == figures["ratios"]
