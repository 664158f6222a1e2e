"""`python -c ...` and `python manage.py ...` for the tests, forked from a warm interpreter.

The settings, guardrail and command tests start the portal in a fresh process with an
environment of their own, as a server or an operator would. Each such start spent about two
seconds importing what does not depend on the environment (Django's ORM, DRF, Celery, pkilint),
so those tests took a sixth of the suite's time. Here one server process per test process imports
those once, then forks a child for each run: the child gets the run's environment, working
directory, argv and fresh file descriptors, runs the code as `__main__` and exits with its status,
as `subprocess.run([sys.executable, ...])` would. Nothing of the portal is imported before the
fork, so each run reads its settings afresh.

Runs whose interpreter options differ (a PYTHON* variable other than the server's) take a real
subprocess. tests/test_python_forkserver.py holds the two to the same behaviour.
"""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
import tempfile
import threading

PRELOADED = (
    "django.db.models",
    "django.http",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.core.management",
    "django.test",
    "rest_framework.serializers",
    "celery.app",
    "kombu",
    "ldap3",
    "cryptography.x509",
    "pkilint.cabf.smime",
    "django_auth_ldap.backend",
    "environ",
)

_lock = threading.Lock()
_server: subprocess.Popen | None = None


def _interpreter_options(env: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in env.items() if name.startswith("PYTHON")}


def run_python(
    arguments: list[str], *, cwd, env: dict[str, str], check: bool = False, umask: int | None = None
) -> subprocess.CompletedProcess[str]:
    """`subprocess.run([sys.executable, *arguments], cwd=, env=, capture_output=True, text=True, check=, umask=)`."""
    arguments = [str(argument) for argument in arguments]
    if _interpreter_options(env) != _interpreter_options(dict(os.environ)) or not arguments:
        return subprocess.run(
            [sys.executable, *arguments],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            check=check,
            umask=-1 if umask is None else umask,
        )
    if umask is None:  # as subprocess: the caller's
        umask = os.umask(0o022)
        os.umask(umask)
    with _lock:
        server = _started()
        server.stdin.write(json.dumps({"argv": arguments, "cwd": str(cwd), "env": env, "umask": umask}) + "\n")
        server.stdin.flush()
        reply = json.loads(server.stdout.readline())
    result = subprocess.CompletedProcess(
        [sys.executable, *arguments], reply["returncode"], reply["stdout"], reply["stderr"]
    )
    if check:
        result.check_returncode()
    return result


def _started() -> subprocess.Popen:
    global _server
    if _server is None or _server.poll() is not None:
        _server = subprocess.Popen(
            [sys.executable, __file__, "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={name: value for name, value in os.environ.items() if name != "DJANGO_SETTINGS_MODULE"},
        )
        atexit.register(_server.kill)
    return _server


# --- The server (this file run with --serve) -----------------------------------------------------


def _serve() -> None:
    import importlib

    replies = os.fdopen(os.dup(1), "w")
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # a stray print of a preloaded module stays out of the replies
    for module in PRELOADED:
        importlib.import_module(module)
    for line in sys.stdin:
        request = json.loads(line)
        replies.write(json.dumps(_fork_and_run(request)) + "\n")
        replies.flush()


def _fork_and_run(request: dict) -> dict:
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _child(request, out.fileno(), err.fileno())  # never returns
        _, status = os.waitpid(pid, 0)
        captured = []
        for stream in (out, err):
            stream.seek(0)
            captured.append(stream.read().decode("utf-8", errors="replace"))
    return {"returncode": os.waitstatus_to_exitcode(status), "stdout": captured[0], "stderr": captured[1]}


def _child(request: dict, out: int, err: int) -> None:
    import runpy
    import traceback
    import types

    code = 1
    try:
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        os.dup2(out, 1)
        os.dup2(err, 2)
        os.umask(request["umask"])
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        argv = request["argv"]
        if argv[0] == "-c":
            sys.argv = ["-c", *argv[2:]]
            sys.path[0] = ""
            main = types.ModuleType("__main__")
            sys.modules["__main__"] = main
            exec(compile(argv[1], "<string>", "exec"), main.__dict__)
        else:
            sys.argv = argv
            sys.path[0] = os.path.dirname(os.path.abspath(argv[0]))
            runpy.run_path(argv[0], run_name="__main__")
        code = 0
    except SystemExit as exit_:
        if exit_.code is None:
            code = 0
        elif isinstance(exit_.code, int):
            code = exit_.code
        else:
            print(exit_.code, file=sys.stderr)
            code = 1
    except BaseException:  # noqa: BLE001 - as the interpreter does: the traceback on stderr, status 1
        traceback.print_exc()
        code = 1
    finally:
        try:
            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


if __name__ == "__main__" and sys.argv[1:] == ["--serve"]:
    _serve()
