"""Thin async resolvers, per domain, over the declared relationships and the per-request loaders."""
