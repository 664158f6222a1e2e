"""Publishing employees' certificates to the corporate directory (OpenLDAP, Active Directory).

config.py     DirectoryConfig from settings, with presets
client.py     ldap3 connection, entry lookup, value-exact modifications (no Django)
publisher.py  sync one entry to the certificates it should hold (no Django)
selectors.py  which certificates those are: the newest valid one senders can encrypt to
services.py   the outbox workflow on DirectoryPublication rows, with audit events
people.py     finding people in the directory (the admin's "Add employee" picker)
"""
