"""``make_dataset`` comes from tests/conftest.py."""
