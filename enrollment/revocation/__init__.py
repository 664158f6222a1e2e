"""Revocation status, from the revoke call to what relying parties fetch.

- `services`: revoke (which reissues the CRL at once), the CRL and its periodic refresh.
- `ocsp`: the OCSP responder's status lookup and signer.
- `views`, `urls`: the public /pki/<ca>.crt, /pki/<ca>.crl and /ocsp/<ca> endpoints.
"""
