"""What every Python process that `import-pipeline dev` starts loads first: this folder is on
their PYTHONPATH, so Python runs its `sitecustomize.py` at start. Standard library only below
here: it is loaded by every process, the webserver and the daemon included."""

from pathlib import Path

#: The folder to put on PYTHONPATH.
SITE_FOLDER = str(Path(__file__).parent)
