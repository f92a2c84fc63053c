"""core: what every layer shares and nothing else needs: errors meant for the user, the settings table,
memory limits, metrics, per-user paths, provenance (commit and versions) and the paper's reported numbers.

May import: the standard library, numpy, torch. Nothing of afm's but afm.core.
"""
