"""Writing a newsletter: `dispatch init` and `new` (scaffold), `dispatch add` (curate).
"""
