"""`python -m import_pipeline.cli`."""

import sys

from import_pipeline.cli import main

sys.exit(main())
