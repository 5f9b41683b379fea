"""Shared core of recsys: settings, the MongoDB and Kafka contracts, local services.

Both the Dagster code location (recsys_assets) and the web app (recsys_web) import this
package; it imports neither Dagster nor Flask.
"""
