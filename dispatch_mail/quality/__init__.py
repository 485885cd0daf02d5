"""`dispatch check`: the findings about what will go wrong in inboxes, and their reports.
"""
