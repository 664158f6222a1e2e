"""The warm-interpreter runner (tests/python_forkserver.py) answers as a fresh `python` does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from python_forkserver import run_python

ROOT = Path(__file__).resolve().parent.parent

CASES = [
    [
        "-c",
        "import sys, os; print(sys.argv[1:], os.environ['WHO'], os.getcwd()); print('to stderr', file=sys.stderr)",
        "a",
        "b",
    ],
    ["-c", "raise SystemExit(3)"],
    ["-c", "raise SystemExit('a message')"],
    ["-c", "import sys; print('partial'); sys.stdout.flush(); raise ValueError('boom')"],
    ["-c", "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"],
    ["-c", "from django.conf import settings; print(settings.configured, __name__)"],
    ["-c", "import sys; print(sys.path[0] == '', 'portal.settings' in sys.modules)"],
]


@pytest.mark.parametrize("arguments", CASES, ids=range(len(CASES)))
def test_a_forked_run_answers_as_a_fresh_interpreter(tmp_path, arguments):
    env = {**os.environ, "WHO": "the run's own"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    fresh = subprocess.run([sys.executable, *arguments], cwd=tmp_path, env=env, capture_output=True, text=True)
    forked = run_python(arguments, cwd=tmp_path, env=env)
    assert (forked.returncode, forked.stdout) == (fresh.returncode, fresh.stdout)
    # A traceback names the same error on its last line (the frames above differ: <string> runs in a fork).
    assert forked.stderr.strip().splitlines()[-1:] == fresh.stderr.strip().splitlines()[-1:]


def test_a_script_runs_as_main_with_its_directory_first_on_the_path():
    env = {**os.environ, "PORTAL_DATA_DIR": "/nonexistent-for-this-test"}
    forked = run_python(["manage.py", "help", "check"], cwd=ROOT, env=env)
    fresh = subprocess.run(
        [sys.executable, "manage.py", "help", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert forked.returncode == fresh.returncode == 0
    assert forked.stdout == fresh.stdout and "usage: manage.py check" in forked.stdout


def test_check_raises_as_subprocess_does(tmp_path):
    with pytest.raises(subprocess.CalledProcessError):
        run_python(["-c", "raise SystemExit(2)"], cwd=tmp_path, env=dict(os.environ), check=True)
