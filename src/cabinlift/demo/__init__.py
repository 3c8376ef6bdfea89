"""The embedded demo data set: Drive&Act-format "real" recordings and SyntheticCabin-format
"synthetic" renders, generated deterministically from params so the pipeline runs anywhere.

See design §3 ("The embedded demo") and :mod:`cabinlift.demo.generate` for the layout.
"""

from cabinlift.demo.params import DEFAULT_DEMO_PARAMS, resolve_params

# ``generate`` lives in :mod:`cabinlift.demo.generate` and is not imported here: the params
# check of every stage reads resolve_params, and the generator loads pandas and scipy.
__all__ = ["DEFAULT_DEMO_PARAMS", "resolve_params"]
