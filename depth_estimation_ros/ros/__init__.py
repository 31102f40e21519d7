"""The ROS 2 layer: message conversion (``messages``), the frame road shared by the node and the bag
tool (``pipeline``), the worker, the node's parameters, the node, rosbag2 processing, the player,
recorder and process graph. Imports the core only; rclpy and rosbags are imported where used.
"""

from depth_estimation_ros._lazy import exports

PUBLIC = {"DepthPipeline": "pipeline", "process_bag": "bag", "write_synthetic_bag": "synthetic_bag"}
__all__ = sorted(PUBLIC)
__getattr__, __dir__ = exports(__name__, PUBLIC)
