"""The data path: functions over Polars frames and SQL that take a batch file from its bytes
to its results in the store — load → validate → cluster → resolve — with `stages` as the entry
points the Dagster ops, the CLI, the tests and the benchmark all call. No Dagster here.
"""
