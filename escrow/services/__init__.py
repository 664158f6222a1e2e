"""The escrow services, one module per sub-domain. They build on enrollment's base (models,
pki, authorities, keystore, bundles) and never on its workflow.

- `escrow`: escrow records (CMS EnvelopedData to the agents), opening and re-wrapping them.
- `agents`: key recovery agents: create, import, deactivate, load an agent's PKCS#12.
- `pickups`: the sealed copies waiting for a download, issued and recovered keys alike.
- `recovery`: recovery requests under dual control, completion by an agent.
"""
