"""The chain keys: rotation with recorded key ids, and the settings that refuse a weak or missing key."""

from __future__ import annotations

import importlib
import sys

import pytest
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.core.management.base import SystemCheckError
from test_verify_audit_log import tamper

from audit.keys import MIN_KEY_CHARACTERS, ChainKeyError, chain_keyring, keyring_build, keyring_problems
from audit.models import AuditEvent
from audit.services import audit_record

KEY_1 = "first-chain-key-0123456789-abcdefghijklmnopqrstuvwxyz"
KEY_2 = "second-chain-key-9876543210-ZYXWVUTSRQPONMLKJIHGFEDCBA"


def settings_read_anew() -> dict:
    """The settings package (portal/settings/) executed again under the current environment, as a
    starting process would read it; the loaded settings modules are put back afterwards."""
    def ours(name: str) -> bool:
        return name == "portal.settings" or name.startswith("portal.settings.")

    saved = {name: module for name, module in sys.modules.items() if ours(name)}
    for name in saved:
        del sys.modules[name]
    try:
        return dict(vars(importlib.import_module("portal.settings")))
    finally:
        for name in [name for name in sys.modules if ours(name)]:
            del sys.modules[name]
        sys.modules.update(saved)
        sys.modules["portal"].settings = saved["portal.settings"]


def use_key(settings, key_id: str, key: str, retired: str = "") -> None:
    settings.PORTAL_AUDIT_CHAIN_KEY_ID = key_id
    settings.PORTAL_AUDIT_CHAIN_KEY = key
    settings.PORTAL_AUDIT_CHAIN_RETIRED_KEYS = retired


def verify() -> str:
    from io import StringIO

    out = StringIO()
    call_command("verify_audit_log", stdout=out)
    return out.getvalue()


def test_rotation_events_under_key_1_and_key_2_both_verify(db, settings):
    use_key(settings, "1", KEY_1)
    old = [audit_record(action="crl.generated", details={"n": index}) for index in range(3)]
    use_key(settings, "2", KEY_2, retired=f"1:{KEY_1}")
    new = [audit_record(action="crl.generated", details={"n": index}) for index in range(2)]

    assert {event.key_id for event in old} == {"1"} and {event.key_id for event in new} == {"2"}
    assert old[0].hash != keyring_build(current_id="2", current_key=KEY_2).mac("2", b"")  # sanity: real HMACs
    out = verify()
    assert "intact: 5 events" in out and f"keyed from #{old[0].pk} (key ids 1, 2)" in out


def test_a_missing_old_key_gives_a_clear_error(db, settings):
    use_key(settings, "1", KEY_1)
    first = audit_record(action="crl.generated")
    use_key(settings, "2", KEY_2)  # key 1 was not kept among the retired keys
    audit_record(action="crl.generated")
    with pytest.raises(CommandError) as failure:
        verify()
    message = str(failure.value)
    assert message.startswith(f"audit log cannot be verified from event {first.pk} ")
    assert "chain key id '1', which is not configured" in message
    assert "PORTAL_AUDIT_CHAIN_RETIRED_KEYS as 1:KEY" in message
    assert KEY_2 not in message


def test_the_wrong_key_under_the_right_id_is_a_mismatch(db, settings):
    use_key(settings, "1", KEY_1)
    event = audit_record(action="crl.generated")
    use_key(settings, "1", KEY_2)
    with pytest.raises(CommandError, match=f"broken at event {event.pk} .*HMAC does not match"):
        verify()


def test_relabelling_an_event_to_another_key_id_is_detected(db, settings):
    use_key(settings, "1", KEY_1)
    audit_record(action="crl.generated")
    use_key(settings, "2", KEY_2, retired=f"1:{KEY_1}")
    event = audit_record(action="crl.generated")
    tamper(lambda: AuditEvent.objects.filter(pk=event.pk).update(key_id="1"))
    with pytest.raises(CommandError, match=f"broken at event {event.pk} "):
        verify()


def test_the_keyring_is_built_once_and_again_when_the_settings_change(settings):
    use_key(settings, "1", KEY_1)
    first = chain_keyring()
    assert chain_keyring() is first
    use_key(settings, "2", KEY_2, retired=f"1:{KEY_1}")
    assert chain_keyring() is not first and chain_keyring().ids == ["1", "2"]
    assert KEY_1 not in repr(chain_keyring()) and KEY_2 not in repr(chain_keyring())


@pytest.mark.parametrize(
    "current_id, current_key, retired, problem",
    [
        ("1", "", "", "PORTAL_AUDIT_CHAIN_KEY is not set"),
        ("1", KEY_1[: MIN_KEY_CHARACTERS - 1], "", "shorter than 43 (32 random bytes"),
        ("1", "ab" * 40, "", "fewer than 10 distinct characters"),
        ("", KEY_1, "", "PORTAL_AUDIT_CHAIN_KEY_ID must be"),
        ("key id with spaces", KEY_1, "", "PORTAL_AUDIT_CHAIN_KEY_ID must be"),
        ("2", KEY_2, "1", "each item is id:key"),
        ("2", KEY_2, "1:short", "key '1' is 5 characters long, shorter than 43"),
        ("2", KEY_2, f"2:{KEY_1}", "given twice or is the current id"),
    ],
)
def test_keyring_problems(current_id, current_key, retired, problem):
    problems = keyring_problems(current_id=current_id, current_key=current_key, retired=retired)
    assert any(problem in text for text in problems), problems
    with pytest.raises(ChainKeyError):
        keyring_build(current_id=current_id, current_key=current_key, retired=retired)
    assert all(current_key not in text for text in problems if current_key)


def test_retired_keys_may_be_separated_by_commas_spaces_or_lines():
    keyring = keyring_build(current_id="3", current_key=KEY_2, retired=f" 1:{KEY_1},\n2:{KEY_2}x \n")
    assert keyring.ids == ["1", "2", "3"]


@pytest.mark.parametrize("key", ["", "short-key"])
def test_system_check_refuses_a_short_or_missing_chain_key(settings, key):
    settings.ENVIRONMENT = "production"
    settings.PORTAL_AUDIT_CHAIN_KEY = key
    errors = [message for message in run_checks() if message.id == "portal.E030"]
    assert len(errors) == 1 and "PORTAL_AUDIT_CHAIN_KEY" in errors[0].msg
    assert not key or (key not in errors[0].msg and key not in errors[0].hint)
    with pytest.raises(SystemCheckError, match="portal.E030"):
        call_command("check", "--deploy")


def test_system_check_accepts_a_long_chain_key(settings):
    use_key(settings, "2024-1", KEY_1, retired=f"2023:{KEY_2}")
    assert "portal.E030" not in [message.id for message in run_checks()]


def test_production_refuses_to_start_without_a_chain_key(monkeypatch, tmp_path):
    """The settings in production: every other secret given, PORTAL_AUDIT_CHAIN_KEY (or _FILE) required."""
    monkeypatch.setenv("PORTAL_ENVIRONMENT", "production")
    monkeypatch.setenv("PORTAL_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("PORTAL_AUDIT_CHAIN_KEY", raising=False)
    monkeypatch.delenv("PORTAL_AUDIT_CHAIN_KEY_FILE", raising=False)
    for _ in range(50):  # give each other required secret as the error names it, until ours
        try:
            settings_read_anew()
        except ImproperlyConfigured as exc:
            name = str(exc).split(" ", 1)[0]
            if name == "PORTAL_AUDIT_CHAIN_KEY":
                assert "must be set in production" in str(exc)
                break
            assert "must be set in production" in str(exc), exc
            monkeypatch.setenv(name, "s" * 48)
    else:
        pytest.fail("the settings started in production without PORTAL_AUDIT_CHAIN_KEY")
    monkeypatch.setenv("PORTAL_AUDIT_CHAIN_KEY_FILE", str(tmp_path / "chain-key"))
    (tmp_path / "chain-key").write_text(KEY_1 + "\n")
    loaded = settings_read_anew()
    assert loaded["PORTAL_AUDIT_CHAIN_KEY"] == KEY_1
    assert loaded["PORTAL_AUDIT_CHAIN_RETIRED_KEYS"] == ""
    assert not (tmp_path / "dev-secrets").exists()
