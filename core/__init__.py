"""Plumbing every app shares, with no models and no import of any app.

- `exceptions`: one class per outcome of a service, each with an API `code` and `http_status`.
- `admin_tools`: the read-only admin, action confirmation pages, the message of an error.
- `downloads`: file responses (attachments; key material never cached).
- `mail`: mail sent after the transaction commits, never failing the workflow.
- `api`: the JSON error shape, its OpenAPI schema, pagination, permission classes, the list
  filters' fields (django-filter) and what every app's API views share (`api/views.py`).
"""
