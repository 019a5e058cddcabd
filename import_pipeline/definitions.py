"""The code location: the definitions, configured from the environment (contract section 1)."""

from import_pipeline.defs import build_defs
from import_pipeline.settings import Settings

defs = build_defs(Settings.from_env())
