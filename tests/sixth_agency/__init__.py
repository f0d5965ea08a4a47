"""A sixth agency, the tax bureau, added as a plug-in (tests/test_sixth_agency.py).

Everything the hub needs of it is here: its tables, mapping, source, linking evidence, one
relationship to `Person` and its estate part (adapter.py), its part of the graph (schema.py,
resolved in resolvers.py) and a grant to add to the policy file (policy.toml). Nothing outside
this package changes to add it."""
