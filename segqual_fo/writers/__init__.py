"""Writers: what the scores become on disk and in FiftyOne.

- :mod:`~segqual_fo.writers.files`: heatmap and issue-mask PNGs, written
  atomically, named from sample ids only;
- :mod:`~segqual_fo.writers.regions`: connected issue regions as plain data;
- :mod:`~segqual_fo.writers.documents`: the output labels as database
  documents (plain dicts).

None imports fiftyone (Dask workers use them).
"""
