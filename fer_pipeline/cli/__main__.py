"""`python -m fer_pipeline.cli ...`: the same as `fer ...`."""

import sys

from fer_pipeline.cli import main

sys.exit(main())
