"""`python -m action100m.cli`: the same as `a100m`."""

import sys

from . import main

sys.exit(main())
