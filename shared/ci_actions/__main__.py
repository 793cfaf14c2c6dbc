"""`python -m ci_actions` is the `ci-actions` command."""

import sys

from ci_actions.cli import main

sys.exit(main())
