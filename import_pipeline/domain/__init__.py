"""The domain: what an import is, in pure pydantic and plain data (no I/O, no engine).

`lines` (the batch line format), `identifiers` (identifier rules), `records` (`record.json`),
`statuses` (the status ladder), `strategies` (the collision strategies), `error_codes`.
"""
