"""Python's cyclic garbage collector, tuned for serving GraphQL answers.

An answer allocates tens of thousands of short-lived objects (resolve infos, paths, records,
dicts of results), nearly none of them in reference cycles. At the default threshold (700
allocations) the young generation is collected dozens of times per page of persons, and each
collection that reaches the older generations walks every long-lived object of the process
(the schema, the policy, the engines). A young generation of 50,000 allocations leaves the
cycles to a handful of collections per request; `bench/read_graph.py` measured a page of 50
persons at about 0.7x the CPU time of the default. Memory grows by at most the young
generation's objects, a few megabytes.
"""

from __future__ import annotations

import gc

SERVING_THRESHOLDS = (50_000, 10, 10)


def tune_for_serving() -> None:
    gc.set_threshold(*SERVING_THRESHOLDS)
