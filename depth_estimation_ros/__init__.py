"""Monocular metric depth for robots: networks, ordinal depth, inference and ROS 2 glue."""

__version__ = "0.1.0"
