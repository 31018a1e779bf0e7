"""``python -m lossmap``: the same as the ``lossmap`` command."""

import sys

from .cli import main

sys.exit(main())
