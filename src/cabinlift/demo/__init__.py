"""The embedded demo data set: Drive&Act-format "real" recordings and SyntheticCabin-format
"synthetic" renders, generated deterministically from params.yaml's ``demo`` section so that
the pipeline runs anywhere.

A bounded subpackage: only the ``demo`` stage (``cabinlift demo``) imports it, and it writes its
data through :mod:`cabinlift.formats`, so the research code reads the demo exactly as it reads the
real data sets. The generator is :func:`cabinlift.demo.generate.generate` (not imported here: it
loads pandas and scipy).
"""
