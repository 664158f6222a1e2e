"""The portal's roles as Django groups, created (and their permissions kept) after migrate."""

from django.apps import apps as django_apps
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission
from django.db import DEFAULT_DB_ALIAS

APPROVERS = "Approvers"
AUDITORS = "Auditors"
PKI_ADMINISTRATORS = "PKI administrators"
KEY_RECOVERY_AGENTS = "Key recovery agents"
# Every role but the employee's: their holders get the shorter idle timeout and (later) a second factor.
TRUSTED_ROLES = (APPROVERS, AUDITORS, PKI_ADMINISTRATORS, KEY_RECOVERY_AGENTS)



def holds_trusted_role(user) -> bool:
    """Approvers, auditors, PKI administrators, agents, and anyone who may use the admin."""
    if user.is_superuser or user.is_staff:
        return True
    return user.groups.filter(name__in=TRUSTED_ROLES).exists()


def is_pki_administrator(user) -> bool:
    """A member of PKI administrators, or a superuser: who asks for and grants trusted roles and offboardings."""
    return user.is_superuser or user.groups.filter(name=PKI_ADMINISTRATORS).exists()


ROLE_PERMISSIONS: dict[str, list[str]] = {
    APPROVERS: [
        "enrollment.view_certificaterequest",
        "enrollment.approve_certificaterequest",
        "enrollment.view_certificate",
        "enrollment.revoke_certificate",
        "enrollment.view_employee",
        "escrow.view_recoveryrequest",
        "escrow.approve_recoveryrequest",
    ],
    AUDITORS: [
        "enrollment.view_certificaterequest",
        "enrollment.view_certificate",
        "enrollment.view_employee",
        "enrollment.view_certificateauthority",
        "escrow.view_escrowrecord",
        "escrow.view_keyrecoveryagent",
        "audit.view_auditevent",
        "enrollment.view_directorypublication",
        "escrow.view_recoveryrequest",
        "escrow.request_legal_hold",
    ],
    PKI_ADMINISTRATORS: [
        "enrollment.view_certificaterequest",
        "enrollment.approve_certificaterequest",
        "enrollment.view_certificate",
        "enrollment.revoke_certificate",
        "enrollment.view_employee",
        "enrollment.add_employee",
        "enrollment.change_employee",
        "enrollment.view_certificateauthority",
        "escrow.view_escrowrecord",
        "escrow.view_keyrecoveryagent",
        "escrow.change_keyrecoveryagent",
        # Not audit.view_auditevent: the audit log is the Auditors' (the API and the admin agree).
        "enrollment.view_directorypublication",
        "enrollment.retry_directorypublication",
        "escrow.view_recoveryrequest",
        "escrow.request_recovery",
        # Failed log-ins (django-axes' counts) and unlocking them: delete is the unlock (portal/admin.py).
        "axes.view_accessattempt",
        "axes.delete_accessattempt",
    ],
    KEY_RECOVERY_AGENTS: ["escrow.view_recoveryrequest", "escrow.complete_recoveryrequest"],
}


def ensure_roles(**kwargs) -> None:
    # post_migrate runs per app in INSTALLED_APPS order: escrow's permissions (created by
    # its own post_migrate) would not exist yet when this runs for enrollment on a new database.
    for app_config in django_apps.get_app_configs():
        create_permissions(app_config, verbosity=0, using=kwargs.get("using", DEFAULT_DB_ALIAS))
    for group_name, codenames in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        permissions = []
        for dotted in codenames:
            app_label, codename = dotted.split(".")
            permission = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
            if permission is not None:
                permissions.append(permission)
        group.permissions.set(permissions)
