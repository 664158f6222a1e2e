"""The demo organization's accounts, which `make run` creates (bootstrap_demo) with PORTAL_DEMO_PASSWORD.

Defined once: bootstrap_demo creates them, and the second factor (portal/second_factor.py)
exempts exactly these names in development unless PORTAL_DEMO_2FA is on (never in production).
"""

from enrollment import roles

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
