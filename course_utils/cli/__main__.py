"""``python -m course_utils.cli ...`` is ``python train.py ...`` (where only the package is installed)."""
import sys

from . import main

sys.exit(main())
