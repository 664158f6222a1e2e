"""Where the portal's own private keys are reached: CA keys (`ca`) and the delegated OCSP
responders' keys (`ocsp`). Nothing else reads PORTAL_CA_PASSPHRASE."""
