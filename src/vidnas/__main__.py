"""``python -m vidnas``: the ``vidnas`` command run as a module."""

import sys

from vidnas.apps.cli import main

sys.exit(main())
