"""FiftyOne tests run on the real embedded database; ``make_dataset`` (in
tests/conftest.py) gives uniquely named datasets deleted after each test."""
