"""The enrollment workflow, one module per sub-domain; every edge (admin, pages, API,
commands, tasks) calls these and nothing else decides.

- `authorities`: the organization, creating and importing CAs (base: others build on it).
- `employees`: employee records under audit; offboarding leavers.
- `requests`: request, approve (which issues at once), reject, renew.
- `issuance`: key generation, lint, signing, escrow, pickup copy; the owner's PKCS#12 download.
- `expiry`: marking expired certificates, reminder mails.

Revocation and the CRL are in `enrollment.revocation.services`.
"""
