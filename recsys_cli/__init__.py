"""The ``recsys`` command: local services, synthetic data, the pipeline, the UI and the web app.

It is the front door a newcomer uses; each subcommand delegates to the package that owns
the work (recsys_core for services and data, recsys_assets for the Dagster jobs).
"""

from recsys_cli.main import main

__all__ = ["main"]
