"""The demo organization's accounts, which `make run` creates (bootstrap_demo) with PORTAL_DEMO_PASSWORD.

Defined once: bootstrap_demo creates them, and the second factor (portal/second_factor.py)
exempts exactly these names in development unless PORTAL_DEMO_2FA is on (never in production).
"""

from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError

from enrollment import roles
from enrollment.pki.pkcs12 import MIN_PASSPHRASE_LENGTH

DEMO_USERS = [
    # username, given name, surname, groups, superuser
    ("alice", "Alice", "Archer", [], False),
    ("bob", "Bob", "Baker", [], False),
    ("approver", "Ann", "Approver", [roles.APPROVERS], False),
    ("approver2", "Arthur", "Approver", [roles.APPROVERS], False),
    ("auditor", "Audrey", "Auditor", [roles.AUDITORS], False),
    ("agent", "Kim", "Agent", [roles.KEY_RECOVERY_AGENTS], False),
    ("admin", "Ada", "Admin", [roles.PKI_ADMINISTRATORS], True),
]

DEMO_USERNAMES = frozenset(username for username, *_ in DEMO_USERS)
DEMO_MAIL_DOMAIN = "example.org"


def demo_password_problems(password: str) -> list[str]:
    """Why `password` cannot be the demo accounts' password (empty: it can).

    The same validators as every account (AUTH_PASSWORD_VALIDATORS), applied as for each demo
    account (similarity to its name and mailbox), and the PKCS#12 minimum, since the demo
    agent's PKCS#12 is protected with it. Checked before bootstrap_demo creates anything.
    """
    problems: list[str] = []
    User = get_user_model()
    for username, given, surname, _groups, _superuser in DEMO_USERS:
        user = User(username=username, first_name=given, last_name=surname, email=f"{username}@{DEMO_MAIL_DOMAIN}")
        try:
            password_validation.validate_password(password, user=user)
        except ValidationError as exc:
            problems.extend(message for message in exc.messages if message not in problems)
    if not problems and len(password) < MIN_PASSPHRASE_LENGTH:
        problems.append(f"It must have at least {MIN_PASSPHRASE_LENGTH} characters (the agent's PKCS#12).")
    return problems
