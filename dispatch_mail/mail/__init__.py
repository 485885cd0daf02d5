"""Rendered issue → MIME messages: one header builder for the .eml and every sent copy,
the per-recipient fast path, DKIM, and the signed unsubscribe tokens.
"""
