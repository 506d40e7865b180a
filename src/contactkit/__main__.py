"""``python -m contactkit`` runs the command line."""

import sys

from contactkit.cli.main import main

sys.exit(main())
