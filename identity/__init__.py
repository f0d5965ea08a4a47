"""Identity: which agency records belong to which person, kept in the hub's own store."""
