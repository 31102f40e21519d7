"""ament_python package that is also pip-installable (``pip install -e .[dev]``)."""

from glob import glob
from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "depth_estimation_ros"
# The robot's install (pip install . / colcon): the node, predict, bag, models, export, build-engine.
RUNTIME = [
    "numpy>=1.24",
    "torch>=2.4",
    "torchvision>=0.19",
    "timm>=1.0",
    "opencv-python-headless>=4.8",
    "pyyaml>=6.0",
    "tqdm>=4.60",
]
# Only the training package (datasets, losses, loop, evaluation) imports these.
TRAINING = ["h5py>=3.8", "scipy>=1.10", "tensorboard>=2.14"]

setup(
    name=PACKAGE,
    version="0.1.0",
    description="Monocular metric depth for robots: ACAN and MSFNet, training, export and a ROS 2 node",
    long_description=Path("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    # training's code installs with the runtime (``depth-estimation train`` names the extra it needs);
    # the benchmarks (benchmarks/) run from a checkout and are not installed.
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*", "training", "training.*"]),
    package_data={PACKAGE: ["data/*.pt", "data/cards/*.yaml"]},  # the demo checkpoint, the built-in model cards
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
        (f"share/{PACKAGE}/config/train", glob("config/train/*.yaml")),
    ],
    install_requires=RUNTIME,
    extras_require={
        "onnx": ["onnx>=1.16", "onnxscript>=0.1", "onnxruntime>=1.18"],
        "tensorrt": ["tensorrt>=10.0"],
        # Intel's CPU runtime: runs the same ONNX graphs, often faster than ONNX Runtime on x86 CPUs.
        "openvino": ["openvino>=2025.0"],
        # Pretrained depth models from transformers folders (Depth Anything, DPT, GLPN, ZoeDepth, Depth Pro).
        "transformers": ["transformers>=5.0"],
        "training": TRAINING,
        "ros": ["rosbags>=0.10", "mcap>=1.1", "mcap-ros2-support>=0.5"],
        # Genuine ROS 2 Jazzy rclpy + Fast DDS from PyPI, for machines without a ROS install (x86_64,
        # CPython 3.10-3.12). Where ROS 2 is installed (a robot, a Jetson), source it instead.
        "rclpy": [
            "ros-jazzy-rclpy[fastrtps]>=7.1",
            "ros-jazzy-sensor-msgs>=5.3",
            "ros-jazzy-std-msgs>=5.3",
            "ros-jazzy-diagnostic-msgs>=5.3",
            "ros-jazzy-lifecycle-msgs>=2.0",
            "ros-jazzy-nav-msgs>=5.3",  # odometry for temporal_fusion
        ],
        "dev": [
            "pytest>=8",
            "pytest-timeout>=2.2",
            "ruff>=0.6",
            "onnx>=1.16",
            "onnxscript>=0.1",
            "onnxruntime>=1.18",
            "openvino>=2025.0",
            *TRAINING,
            "rosbags>=0.10",
            "mcap>=1.1",
            "mcap-ros2-support>=0.5",
            "catkin_pkg>=1.0",
            "colcon-core>=0.15",
            "colcon-ros>=0.4",
            "colcon-python-setup-py>=0.2",
            "transformers>=5.0",
            "mypy>=1.10",
        ],
    },
    zip_safe=True,
    entry_points={
        "console_scripts": [
            "depth-estimation = depth_estimation_ros.commands:main",
            "depth_node = depth_estimation_ros.ros.node:main",
        ],
    },
)
