"""The dynamic partitions: one per import record (its landing-zone folder name)."""

import dagster as dg

#: The partitions' name, for the instance calls that take one.
IMPORT_RECORDS = "import_records"
import_records = dg.DynamicPartitionsDefinition(name=IMPORT_RECORDS)
