"""The audit trail: one record per person per response, hash-chained, sealed by signed
checkpoints, readable by the person it concerns."""
