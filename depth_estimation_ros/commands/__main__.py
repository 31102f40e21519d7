"""``python -m depth_estimation_ros.commands``: the ``depth-estimation`` command."""

import sys

from depth_estimation_ros.commands import main

sys.exit(main())
