"""The issue in a real browser: the live preview server, Chromium screenshots and the
CI previews gallery (its CSS and JS are files in ``assets/``).
"""
