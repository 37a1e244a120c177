"""``python -m vidnas``: the ``vidnas`` command, also under ``torchrun -m vidnas``."""

import sys

from vidnas.apps.cli import main

sys.exit(main())
