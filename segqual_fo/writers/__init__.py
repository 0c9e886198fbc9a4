"""Writers: what the scores become on disk and in FiftyOne.

- :mod:`~segqual_fo.writers.files`: heatmap and issue-mask PNGs, written
  atomically, named from sample ids only;
- :mod:`~segqual_fo.writers.regions`: connected issue regions as plain data.

Neither imports fiftyone; the FiftyOne objects are built by the pipeline.
"""
