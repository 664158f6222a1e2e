"""The keys: escrow to the key recovery agents, pickups for download, recovery under dual control.

Where to look: `services/` (escrow, agents, pickups, recovery), `cms.py` and `sealing.py`
(pure crypto), `selectors.py` (reads), `views.py` and `forms.py` (the self-service key pages),
`admin.py` and `api/` (edges), `models.py`. Escrow builds on enrollment's base and never
calls the enrollment workflow.
"""
