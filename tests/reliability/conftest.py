from tests.fo.conftest import make_dataset  # noqa: F401  (the same fixture)
