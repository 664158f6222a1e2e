"""DRF permission classes for the API: who may call an endpoint at all.

A permission class answers only what the caller's role decides. Whether the caller may see
or act on one object stays with the services and selectors, which answer 404 where the
object's existence must not leak: a class here never turns such a 404 into a 403.

    permission_classes = [
        *default_permission_classes(),
        HasPerm("enrollment.view_employee", "Only approvers … list employees.", methods=["GET"]),
    ]

A view that names its own classes starts from the defaults (settings REST_FRAMEWORK): an
authenticated caller, and the second factor for trusted roles (portal.second_factor_guards,
which this layer cannot import by name).
"""

from __future__ import annotations

from collections.abc import Iterable

from rest_framework.permissions import BasePermission
from rest_framework.settings import api_settings

__all__ = ["HasPerm", "default_permission_classes", "user_has_perm"]


def default_permission_classes() -> list[type[BasePermission]]:
    """DEFAULT_PERMISSION_CLASSES: what every view requires before its own classes (they are not replaced)."""
    return list(api_settings.DEFAULT_PERMISSION_CLASSES)


def user_has_perm(user, permission: str) -> bool:
    """An active, authenticated user holding the Django permission "app.codename" (superusers hold all)."""
    return bool(user is not None and user.is_authenticated and user.is_active and user.has_perm(permission))


class _HasPerm(BasePermission):
    permission: str = ""
    methods: frozenset[str] | None = None
    message = "You may not do this."
    # The JSON error's code, as a service's NotAllowed gives it (core.exceptions).
    code = "forbidden"

    def has_permission(self, request, view) -> bool:
        if self.methods is not None and request.method not in self.methods:
            return True
        return user_has_perm(request.user, self.permission)


def HasPerm(permission: str, message: str, *, methods: Iterable[str] | None = None) -> type[BasePermission]:
    """A permission class: the caller holds `permission`, else 403 with `message`.

    `methods` limits the check to those HTTP methods (GET covers HEAD); the others pass, so a
    method the view does not implement is still a 405 for everyone. Anonymous callers get
    401, as from IsAuthenticated.
    """
    checked = None
    if methods is not None:
        checked = frozenset(method.upper() for method in methods)
        if "GET" in checked:
            checked |= {"HEAD"}
    name = f"HasPerm({permission!r})"
    return type(name, (_HasPerm,), {"permission": permission, "message": message, "methods": checked})
