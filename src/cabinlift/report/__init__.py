"""The single-file offline report (``metrics/report.html``): Table 1, the figures, the per-joint
and per-activity errors, convergence and the provenance of the results on one page that opens
without a network.

:mod:`~cabinlift.report.provenance` collects where the results come from (commit, tree state,
params against the closest profile, data hashes, versions, device, wall times),
:mod:`~cabinlift.report.compare` sets our Table 1 beside the paper's,
:mod:`~cabinlift.report.figures` turns figures into inline images, :mod:`~cabinlift.report.page`
renders the HTML and :mod:`~cabinlift.report.stage` reads the stage's inputs and writes the page.
"""
