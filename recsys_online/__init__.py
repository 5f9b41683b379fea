"""The online side: the updater that turns shoppers' interactions into new recommendations within a second.

It reads and writes only what ``recsys_core.contract`` defines, scores with
``recsys_core.scoring`` and connects through ``recsys_core.connections``; it imports neither
Dagster, Spark nor Flask, so it runs as a small process of its own (``recsys updater``).
"""
