"""Pure cryptography for the S/MIME portal: keys, profiles, CA, CRL, PKCS#12, lint.

Nothing in this package imports Django, so it can be tested and reused on its own.
"""
