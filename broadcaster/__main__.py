"""``python -m broadcaster start ...``, the same as the ``broadcaster`` console script."""

import sys

from .server.cli import main

sys.exit(main())
