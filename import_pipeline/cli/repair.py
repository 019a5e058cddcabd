"""The commands that fix what failed: `failures`, `patch`, `reimport` (contract section 11)."""

from __future__ import annotations

import argparse

from import_pipeline.cli.common import Command


def add_commands(command: Command) -> list[argparse.ArgumentParser]:
    return []
