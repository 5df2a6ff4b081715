"""`python -m introdl.cli ...`: the `introdl` command without the console script."""

import sys

from introdl.cli import main

sys.exit(main())
