"""What the owner writes: dispatch.yaml and issue manifests, validated into typed models.

The bottom of the pipeline: it imports nothing of dispatch but ``errors``.
"""
