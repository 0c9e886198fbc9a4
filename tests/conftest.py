"""Shared fixtures. FiftyOne-backed fixtures live in the FiftyOne test
packages' own conftest files, so the core tests never start a database."""

import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(0)
