"""Exports for reporting jobs: each a stream of rows read in key-ordered batches (constant
memory in the number of persons), written as CSV, NDJSON or Parquet (edge/exports.py serves
them, `hub export` downloads them)."""
