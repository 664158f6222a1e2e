"""A SoftHSM2 token for tests: its own softhsm2.conf and token directory, nothing system-wide.

SoftHSM2 (Debian package softhsm2) reads the file named by SOFTHSM2_CONF when the PKCS#11
module is initialized, which python-pkcs11 does once per process: `start_softhsm` must run
before anything in the process loads the module, and the variable stays set while the
token is in use. `softhsm2-util --init-token --free` puts a fresh token into the first free
slot; the tests find it by label, as the portal does.

Missing softhsm2 skips the tests that need it, or fails them when CI is set (require_tool).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from portal_testing import require_tool

# Debian and Ubuntu install the module here (multi-arch builds link it from the triplet path).
MODULE_PATHS = (
    Path("/usr/lib/softhsm/libsofthsm2.so"),
    Path("/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"),
    Path("/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so"),
)
TOKEN_LABEL = "portal-test-ca"
USER_PIN = "4711-user-pin-for-tests"
SO_PIN = "0815-so-pin-for-tests"


@dataclass(frozen=True)
class SoftHsm:
    directory: Path
    conf: Path
    module_path: str
    token_label: str
    pin: str
    so_pin: str

    def init_token(self, label: str) -> None:
        """Another token in the next free slot (only before the module is loaded in-process)."""
        _run(
            "softhsm2-util", "--init-token", "--free", "--label", label, "--so-pin", self.so_pin, "--pin", self.pin,
            env={"SOFTHSM2_CONF": str(self.conf)},
        )  # fmt: skip


def softhsm_module() -> str:
    require_tool("softhsm2-util")
    for path in MODULE_PATHS:
        if path.exists():
            return str(path)
    message = "the SoftHSM2 PKCS#11 module is not installed (libsofthsm2.so)"
    if os.environ.get("CI"):
        pytest.fail(message + " (CI must install softhsm2)")
    pytest.skip(message)


def start_softhsm(directory: Path) -> SoftHsm:
    """A configuration and one initialized token under `directory`; sets SOFTHSM2_CONF."""
    module_path = softhsm_module()
    tokens = directory / "tokens"
    tokens.mkdir(parents=True, mode=0o700)
    conf = directory / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokens}\n"
        "objectstore.backend = file\n"
        "log.level = ERROR\n"
        "slots.removable = false\n"
    )
    os.environ["SOFTHSM2_CONF"] = str(conf)
    hsm = SoftHsm(directory, conf, module_path, TOKEN_LABEL, USER_PIN, SO_PIN)
    hsm.init_token(TOKEN_LABEL)
    return hsm


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [require_tool(args[0]), *args[1:]],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:2])} failed: {result.stdout}{result.stderr}")
    return result
