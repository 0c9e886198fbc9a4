"""Execution: the per-image job and its runners (no FiftyOne here).

- :mod:`~segqual_fo.execution.job`: what scoring one image needs, as plain
  picklable data (label references, the job, output records);
- :mod:`~segqual_fo.execution.local`: threads in this process;
- :mod:`~segqual_fo.execution.dask`: shard tasks on a Dask cluster, with
  exact, order-free reductions (results equal the local run bit for bit).

The FiftyOne layer (:mod:`segqual_fo.fo`) resolves the inputs, supplies the
collector that commits the records, and the progress bar. Dask workers
import only this package and the layers below it.
"""
