"""Statistical disclosure control for workforce statistics: fixed random rounding to base 5,
decided by a cell key (docs/statistics.md has the threat model).

Every person carries a record key, a random number fixed when the person is created
(identity/tables.py). A cell's key is the sum of its persons' record keys modulo the keys'
range, so the same persons always make the same key, whichever query, `groupBy` order or
filter produced the cell. Each count is rounded to a multiple of 5, up with probability
(count mod 5) / 5 as that key decides: unbiased, and every shown count, and so every sum or
difference of shown counts, is a multiple of 5.

>>> rounded(10, key_sum=123)
10
>>> rounded(3, key_sum=0), rounded(3, key_sum=RECORD_KEY_RANGE - 1)
(5, 0)
"""

from __future__ import annotations

from identity.tables import RECORD_KEY_RANGE

BASE = 5


def cell_key(key_sum: int) -> int:
    """A cell's key, uniform over [0, RECORD_KEY_RANGE) when its record keys are, from the
    sum of its persons' record keys."""
    return key_sum % RECORD_KEY_RANGE


def rounded(count: int, key_sum: int) -> int:
    """The count rounded to a multiple of BASE: down, or up with probability
    (count mod BASE) / BASE decided by the cell key; so its expected value is the count and
    it never differs from the count by BASE or more."""
    down = count - count % BASE
    rounds_up = cell_key(key_sum) * BASE < (count % BASE) * RECORD_KEY_RANGE
    return down + BASE if rounds_up else down
