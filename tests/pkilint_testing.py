"""pkilint's linters as their command lines give them, run in this process.

Each pkilint console script (`lint_cabf_smime_cert`, `lint_crl`, `lint_ocsp_response`, ...) only
calls `pkilint.bin.<name>.main(argv)`. Calling that here runs the same validators on the same
files without starting Python and importing pkilint for every check (1.4 s each; they were a
fifth of the suite's time). tests/enrollment/pki/test_pki_lint.py holds the two to the same answer.

A console script builds its validators afresh on every run, and five of them parse the Public Suffix
List (0.25 s each, four fifths of a run's time). Here they share one parsed list per set of options:
the list is read-only once parsed (publicsuffixlist documents its methods as thread-safe after
__init__), so the validators find what they would with a list of their own.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import io
import subprocess
from pathlib import Path
from unittest import mock

import publicsuffixlist

_PublicSuffixList = publicsuffixlist.PublicSuffixList


def is_pkilint_tool(program: str | Path) -> bool:
    name = Path(program).name
    return name.startswith("lint_") and importlib.util.find_spec(f"pkilint.bin.{name}") is not None


@functools.cache
def shared_public_suffix_list(**options) -> publicsuffixlist.PublicSuffixList:
    return _PublicSuffixList(**options)


def pkilint_in_process(program: str | Path, *arguments: str | Path) -> subprocess.CompletedProcess[str]:
    """`program arguments...` as a CompletedProcess, run through the console script's main()."""
    name = Path(program).name
    main = importlib.import_module(f"pkilint.bin.{name}").main
    stdout, stderr = io.StringIO(), io.StringIO()
    shared_list = mock.patch.object(publicsuffixlist, "PublicSuffixList", shared_public_suffix_list)
    with shared_list, contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = main([str(argument) for argument in arguments])
        except SystemExit as exit_:  # argparse errors, and linters that exit instead of returning
            code = exit_.code if isinstance(exit_.code, int) else 1
    return subprocess.CompletedProcess(
        [name, *map(str, arguments)], int(code or 0), stdout.getvalue(), stderr.getvalue()
    )


def run_console_script(program: str | Path, *arguments: str | Path) -> subprocess.CompletedProcess[str]:
    """The same command line in a process of its own, as an auditor runs it."""
    return subprocess.run(
        [str(program), *map(str, arguments)], capture_output=True, text=True, errors="replace", timeout=120
    )
