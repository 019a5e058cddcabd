"""The dynamic partitions: one per import record (its landing-zone folder name)."""

import dagster as dg

import_records = dg.DynamicPartitionsDefinition(name="import_records")
