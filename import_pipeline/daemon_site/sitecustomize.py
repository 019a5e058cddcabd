"""Loaded by Python at the start of every process that `import-pipeline dev` starts (its
PYTHONPATH names this folder): Dagster's daemons then show a repeated error once a minute
(`quiet_logs`), not hundreds of times a second."""

from import_pipeline.daemon_site.quiet_logs import install

install()
