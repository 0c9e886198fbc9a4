"""The FiftyOne layer: everything that talks to FiftyOne.

- :mod:`~segqual_fo.fo.compute`: :func:`compute_label_quality`, the
  orchestration (validate -> resolve inputs -> run -> write back -> record);
- :mod:`~segqual_fo.fo.inputs`: what a run reads, resolved from a collection;
- :mod:`~segqual_fo.fo.writeback` and :mod:`~segqual_fo.fo.commit`: records
  to committed fields, totals, mask targets and App colours;
- :mod:`~segqual_fo.fo.runs`: the run as a FiftyOne run (typed config,
  rename, delete), resume and ownership rules; with
  :mod:`~segqual_fo.fo.runlock` (one run per key) and
  :mod:`~segqual_fo.fo.checkpoint` (totals of committed samples);
- :mod:`~segqual_fo.fo.documents`: output labels as FiftyOne objects;
- :mod:`~segqual_fo.fo.queries`: what the CLI, the report and the plugin ask;
- :mod:`~segqual_fo.fo.plugin`: installing the App plugin.

Imports go downward only: this layer uses :mod:`segqual_fo.execution`,
the adapters, writers and core; nothing below imports it.
"""
