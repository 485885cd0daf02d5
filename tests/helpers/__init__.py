"""Code the tests share: the project factory, test servers, guards (fixtures: conftest.py)."""
