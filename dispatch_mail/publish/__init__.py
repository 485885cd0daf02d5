"""What a build leaves on disk: the issue's files, exports for other tools, the web archive.
"""
