"""The graph's language, below every other part: its values and records, and its errors."""
