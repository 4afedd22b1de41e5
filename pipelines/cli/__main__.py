"""`python -m pipelines.cli …` is `planning …` (the stack and the tests start children this way)."""

import sys

from pipelines.cli.main import main

sys.exit(main())
