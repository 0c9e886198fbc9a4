"""One LocalCluster (2 worker processes, 1 thread each) per test session.

Workers get a FIFTYONE_DATABASE_URI that points at a closed port: the design
says workers never touch the database, and this makes any attempt fail.
"""

import pytest

from tests.fo.conftest import make_dataset  # noqa: F401  (the same fixture)

WORKER_ENV = {"FIFTYONE_DATABASE_URI": "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=1000"}


@pytest.fixture(scope="session")
def dask_cluster():
    distributed = pytest.importorskip("distributed")
    import logging

    import dask

    from segqual_fo.distributed import WORKER_DASK_CONFIG

    # segqual's worker settings (a default cluster would also leave Dask's
    # MALLOC_TRIM_THRESHOLD_ in this process's environment for later ones)
    with dask.config.set(WORKER_DASK_CONFIG), distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,
        env=WORKER_ENV,
    ) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def dask_client(dask_cluster):
    import distributed

    with distributed.Client(dask_cluster) as client:
        yield client
