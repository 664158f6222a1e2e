"""The portal's roles as Django groups, created (and their permissions kept) after migrate."""

from django.contrib.auth.models import Group, Permission

APPROVERS = "Approvers"
AUDITORS = "Auditors"
PKI_ADMINISTRATORS = "PKI administrators"
KEY_RECOVERY_AGENTS = "Key recovery agents"

ROLE_PERMISSIONS: dict[str, list[str]] = {
    APPROVERS: [
        "enrollment.view_certificaterequest",
        "enrollment.approve_certificaterequest",
        "enrollment.view_certificate",
        "enrollment.view_employee",
    ],
    AUDITORS: [
        "enrollment.view_certificaterequest",
        "enrollment.view_certificate",
        "enrollment.view_employee",
        "enrollment.view_certificateauthority",
        "escrow.view_escrowrecord",
        "escrow.view_keyrecoveryagent",
        "escrow.view_auditevent",
        "enrollment.view_directorypublication",
    ],
    PKI_ADMINISTRATORS: [
        "enrollment.view_certificaterequest",
        "enrollment.approve_certificaterequest",
        "enrollment.view_certificate",
        "enrollment.view_employee",
        "enrollment.add_employee",
        "enrollment.change_employee",
        "enrollment.view_certificateauthority",
        "escrow.view_escrowrecord",
        "escrow.view_keyrecoveryagent",
        "escrow.change_keyrecoveryagent",
        "escrow.view_auditevent",
        "enrollment.view_directorypublication",
        "enrollment.retry_directorypublication",
    ],
    KEY_RECOVERY_AGENTS: [],
}


def ensure_roles(**kwargs) -> None:
    for group_name, codenames in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        permissions = []
        for dotted in codenames:
            app_label, codename = dotted.split(".")
            permission = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
            if permission is not None:
                permissions.append(permission)
        group.permissions.set(permissions)
