"""One local cluster (2 worker processes, 1 thread each) per test session,
started the way ``segqual score --workers 2`` starts it.

Workers get a FIFTYONE_DATABASE_URI that points at a closed port: the design
says workers never touch the database, and this makes any attempt fail.
"""

import pytest


WORKER_ENV = {"FIFTYONE_DATABASE_URI": "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=1000"}


def worker_cluster(**kwargs):
    """``segqual_fo.execution.dask.local_cluster(2)`` with the workers' database
    pointed at a closed port; yields a Client."""
    from segqual_fo.execution.dask import local_cluster

    return local_cluster(2, env=WORKER_ENV, **kwargs)


@pytest.fixture(scope="session")
def dask_client():
    with worker_cluster() as client:
        yield client
