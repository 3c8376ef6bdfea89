"""``python -m cabinlift``: the ``cabinlift`` command (how a command starts itself again with
the environment of its numerics mode, :func:`cabinlift.numerics.prepare`)."""

import sys

from cabinlift.cli import main

sys.exit(main())
