"""The notice's workflows: cross-agency writes that complete everywhere or leave no trace,
retry-safe under an idempotency key, and finished or undone after a crash."""
