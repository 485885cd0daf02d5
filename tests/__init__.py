"""The test suite, a package: shared code is imported as ``tests.helpers.<module>``."""
