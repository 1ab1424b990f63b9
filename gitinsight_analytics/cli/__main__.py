"""``python -m gitinsight_analytics.cli``: the same as the ``gitinsight`` command."""

import sys

from . import main

sys.exit(main())
