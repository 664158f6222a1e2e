"""The certificates: CAs, employees, requests, issuance, revocation, expiry, the directory.

Where to look: `services/` (the workflow), `revocation/` (revoke, CRL, OCSP), `keystore/`
(the portal's private keys), `bundles.py` (downloads), `pki/` (pure crypto), `directory/`
(LDAP publishing), `signals.py` and `receivers.py` (what optional parts react to), `tasks.py`
(Celery), `admin.py` and `api/` (edges), `models.py` and `selectors.py` (data and reads).
"""
