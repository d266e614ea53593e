"""``python -m realness.cli``: the same as the ``realness`` command."""

import sys

from realness.cli import main

sys.exit(main())
