"""The code location: the definitions, configured from the environment when Dagster loads
them (contract section 1), never when this module is imported."""

import dagster as dg

from import_pipeline.defs import build_defs
from import_pipeline.defs.resources import ImportPipelineResource
from import_pipeline.settings import Settings


@dg.definitions
def defs() -> dg.Definitions:
    return build_defs(Settings.from_env(), ImportPipelineResource.from_environment())
