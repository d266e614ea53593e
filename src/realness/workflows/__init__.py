"""Ready-made workflows around the CORE scorer.

- :mod:`realness.workflows.filtering`: rank a folder of images and keep the most real ones.
- :mod:`realness.workflows.selection`: given several models' outputs for the same prompts,
  pick the most real output per prompt and summarize each model (results in
  :mod:`~realness.workflows.selection_results`, pairing by file name in :mod:`~realness.workflows.pairing`).
- :mod:`realness.workflows.report`: one self-contained HTML page for a filter or compare run.
- :mod:`realness.workflows.regression`: assert in a test suite that realness did not drop
  against a stored baseline.
- :mod:`realness.workflows.scoring`: the ``model=`` argument they all share.
"""
