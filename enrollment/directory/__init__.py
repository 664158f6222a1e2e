"""Publishing employees' certificates to the corporate directory (OpenLDAP, Active Directory).

config.py     DirectoryConfig from settings, with presets
client.py     ldap3 connection, entry lookup, value-exact modifications (no Django)
publisher.py  publish / unpublish one certificate on one entry (no Django)
services.py   the outbox workflow on DirectoryPublication rows, with audit events
"""
