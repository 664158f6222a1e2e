"""Every changelist of the admin filters only through its list filters (core/admin_tools.py).

Django applies any other `?field__lookup=` to the queryset as it is: `?mail__regex=(` was a
DataError 500 on PostgreSQL (and an OperationalError on SQLite), and lookups the filters never
offer are a way to probe data. A new ModelAdmin that forgets the rule fails the first test.
"""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.test import RequestFactory
from portal_testing import PASSWORD

from core.admin_tools import FilterLookupsOnlyChangeList


def test_every_registered_admin_uses_the_filter_only_changelist(db, make_user):
    request = RequestFactory().get("/")
    request.user = make_user("root", superuser=True, employee=False)
    loose = [
        model._meta.label_lower
        for model, model_admin in admin.site._registry.items()
        if not issubclass(model_admin.get_changelist(request), FilterLookupsOnlyChangeList)
    ]
    assert loose == []


@pytest.mark.parametrize("query", ["mail__regex=(", "user__password__startswith=pbkdf2", "mail__contains=a"])
def test_an_employee_lookup_the_filters_do_not_offer_is_a_400(client, make_user, alice, query):
    make_user("root", superuser=True, employee=False)
    assert client.login(username="root", password=PASSWORD)

    assert client.get(f"/admin/enrollment/employee/?{query}").status_code == 400
    assert client.get("/admin/enrollment/employee/?q=alice").status_code == 200  # search stays
