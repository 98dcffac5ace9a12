"""``python -m mentor`` (also the entry point under torchrun)."""

import sys

from mentor.cli import main

sys.exit(main())
