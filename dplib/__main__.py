"""`python -m dplib ...` is the `dplib` command (dplib.run.cli)."""

import sys

from .run.cli import main

sys.exit(main())
