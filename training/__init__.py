"""Offline side of the project: datasets, augmentation, losses, the training loop and evaluation.

Nothing in ``depth_estimation_ros`` imports it but the commands that train or evaluate; its
dependencies are the ``training`` extra. Export and quantisation moved to
``depth_estimation_ros.deploy`` (the old ``training.export`` paths still import, with a warning).
"""

import depth_estimation_ros  # noqa: F401  (installs the old module paths' aliases)
