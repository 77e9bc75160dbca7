"""``python -m tfptlm`` is the ``tfptlm`` command."""

import sys

from tfptlm.cli import main

sys.exit(main())
