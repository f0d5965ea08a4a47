"""Who may see what: signing keys, client tokens, and the grants policy."""
