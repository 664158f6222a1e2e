"""The scale benchmarks (bench/cases_scale.py, cases_ldap.py) run in quick mode against a real slapd and give figures.

No timing assertion (the machine may be busy): that they run, publish every certificate, keep
the audit chain intact and report positive, finite figures with the sizes they measured.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from portal_testing import require_tool
from python_forkserver import run_python
from slapd_server import find_program

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str, tmp_path) -> str:
    """`code` in a fresh process on bench/harness.py's throwaway portal (as bench/run.py runs it)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "PORTAL_BROKER_URL")}
    if env.get("DATABASE_URL", "").startswith("postgres"):
        # The harness makes (and drops) test_<name>: not the test database this session runs on,
        # nor the one of this module's other test, which another xdist worker may run at the same time.
        env["DATABASE_URL"] += f"_bench_{tmp_path.name.replace('-', '_')[-24:]}_{os.getpid()}"
    script = tmp_path / "scale.py"
    script.write_text(
        "import json, shutil, sys, tempfile\n"
        "from pathlib import Path\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from bench.harness import setup_django, teardown_django\n"
        "workdir = Path(tempfile.mkdtemp(prefix='portal-bench-scale-test-'))\n"
        "setup_django(workdir)\n"
        "try:\n"
        "    from bench import cases_ldap, cases_scale\n"
        "    from bench.run import audit_chain_intact\n"
        "    from bench.world import build_world\n"
        "    world = build_world(ca_key_type='ec-p256')\n"
        + "".join(f"    {line}\n" for line in code.strip().splitlines())
        + "    print(json.dumps({'results': [r.as_json() for r in results], 'intact': audit_chain_intact()}))\n"
        "finally:\n"
        "    teardown_django()\n"
        "    shutil.rmtree(workdir, ignore_errors=True)\n"
    )
    result = run_python([str(script)], cwd=ROOT, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip().splitlines()[-1]


def _figures(line: str) -> dict:
    figures = json.loads(line)
    assert figures["intact"] is True
    for row in figures["results"]:
        assert 0 < row["raw_per_second"] < math.inf and 0 < row["portal_per_second"] < math.inf, row
        assert math.isclose(row["ratio"], row["portal_per_second"] / row["raw_per_second"])
    return {row["name"]: row for row in figures["results"]}


def test_ldap_publish_ratio_publishes_every_certificate_over_one_directory_connection(tmp_path):
    find_program("slapd") or require_tool("slapd")
    code = """
from enrollment.directory.client import DirectoryClient
opened = []
server = DirectoryClient._server
DirectoryClient._server = lambda self: opened.append(1) or server(self)
results = [cases_ldap.ldap_publish_ratio(world, count=30, rounds=2)]
results[0].notes["connections_opened"] = len(opened)
"""
    row = _figures(_run(code, tmp_path))["ldap_publish_ratio"]
    assert row["operations"] == 30 and row["notes"]["certificates"] == 30
    # One bound connection per drain (two rounds: two drains), not one per publication.
    assert row["notes"]["connections_opened"] == 2


def test_changelist_scaling_reports_the_time_at_both_sizes(tmp_path):
    # Ten times the rows, as --quick (3,000 vs 300 audit events) and the full run, on fewer rows.
    code = "results = cases_scale.changelist_scaling(world, quick=True, rounds=1, audit_sizes=(60, 600), row_sizes=(20, 200))"
    rows = _figures(_run(code, tmp_path))
    assert set(rows) == {
        "audit_changelist_1m_vs_10k_time_ratio",
        "certificate_changelist_100k_vs_1k_time_ratio",
        "request_changelist_100k_vs_1k_time_ratio",
    }
    for row in rows.values():
        notes = row["notes"]
        assert notes["large_rows"] == 10 * notes["small_rows"]
        # The ratio is the time at the large size over the time at the small one.
        assert math.isclose(row["ratio"], notes["large_seconds"] / notes["small_seconds"], rel_tol=0.01)
