"""Ingest stage: raw Amazon review and metadata files into MongoDB, one partition per category.

Deliberately empty, as every package of ``recsys_assets`` is: Spark's Python workers import the
module of each function a UDF calls, and with it its packages, so a package that imported its
Dagster definitions (``defs``) would cost every worker of every job seconds of imports.
"""
