"""The suppression store: who must not be mailed and why, in SQLite or a shared PostgreSQL.

``records``: what it holds and the events that change it; ``base``: the interface every
reader and writer uses; ``open_store`` picks the backend (DISPATCH_DATABASE_URL, else the
project's SQLite file).
"""
