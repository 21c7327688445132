"""``python -m orchestrator`` is ``switchboard``."""

import sys

from .cli import main

sys.exit(main())
