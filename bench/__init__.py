"""The benchmark: hierarchy and lifecycle work at scale against a real Neo4j.

Run it with ``make bench`` (``python -m bench``); see docs/performance.md.
"""
