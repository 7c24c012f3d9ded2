"""`python -m bot`: the same as the `mfi-ar` command."""

import sys

from bot.cli import main

sys.exit(main())
