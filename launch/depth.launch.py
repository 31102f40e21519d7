"""Launch the monocular depth node (a lifecycle node) on one camera.

    ros2 launch depth_estimation_ros depth.launch.py model:=/path/model.engine \\
        image_topic:=/camera/color/image_raw camera_info_topic:=/camera/color/camera_info

The node starts itself (its ``autostart`` parameter, true by default: configure, then activate), the
same way as under ``ros2 run``; with autostart:=false it stays unconfigured for a lifecycle manager
or ``ros2 lifecycle set <node> configure`` / ``activate``. The launch file never drives transitions
itself, so the node is never configured twice.

The parameters come from params_file (default: the installed config/depth.yaml). The model,
backend, use_sim_time and autostart arguments override the file only when given on the command line
(their default, an empty string, leaves the file's value).
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

# Launch arguments that override the params file when given, with the parameter's type: typed
# explicitly so that a path or name stays a string whatever YAML would make of it.
OVERRIDES = {"model": str, "backend": str, "scale_source": str, "use_sim_time": bool, "autostart": bool}


def depth_node(context):
    # The substitution, not its evaluated string: launch converts "false" to a bool itself.
    overrides = {
        name: ParameterValue(LaunchConfiguration(name), value_type=kind)
        for name, kind in OVERRIDES.items()
        if LaunchConfiguration(name).perform(context) != ""
    }
    image_topic = LaunchConfiguration("image_topic")
    return [
        LifecycleNode(
            package="depth_estimation_ros",
            executable="depth_node",
            name=LaunchConfiguration("node_name"),
            namespace=LaunchConfiguration("namespace"),
            output="screen",
            parameters=[LaunchConfiguration("params_file"), overrides],
            # image/compressed follows image inside the node (image_transport's convention).
            remappings=[
                ("image", image_topic),
                ("camera_info", LaunchConfiguration("camera_info_topic")),
                ("sparse_depth", LaunchConfiguration("sparse_depth_topic")),
                ("sparse_points", LaunchConfiguration("sparse_points_topic")),
                ("odometry", LaunchConfiguration("odometry_topic")),
            ],
        )
    ]


def generate_launch_description():
    from_file = " Empty (the default): the params file's value."
    arguments = [
        DeclareLaunchArgument(
            "model",
            default_value="",
            description="Model: checkpoint (.pt), ONNX graph (.onnx), TensorRT engine (.engine) or transformers "
            "model folder." + from_file,
        ),
        DeclareLaunchArgument(
            "backend",
            default_value="",
            description="Inference backend: auto, tensorrt, onnxruntime, openvino or torch." + from_file,
        ),
        DeclareLaunchArgument(
            "params_file",
            default_value=PathJoinSubstitution([FindPackageShare("depth_estimation_ros"), "config", "depth.yaml"]),
            description="YAML file with the node's parameters.",
        ),
        DeclareLaunchArgument("namespace", default_value="", description="Namespace of the node and its topics."),
        DeclareLaunchArgument(
            "image_topic", default_value="/camera/image_raw", description="Camera image topic (sensor_msgs/Image)."
        ),
        DeclareLaunchArgument(
            "camera_info_topic",
            default_value="/camera/camera_info",
            description="CameraInfo topic of the camera image.",
        ),
        DeclareLaunchArgument(
            "scale_source",
            default_value="",
            description="Metric scale: none, fixed, sparse_depth, sparse_points or ground_plane." + from_file,
        ),
        DeclareLaunchArgument(
            "sparse_depth_topic",
            default_value="/camera/sparse_depth",
            description="Sparse metric depth registered to the camera (sensor_msgs/Image 16UC1 mm or 32FC1 m), "
            "for scale_source sparse_depth.",
        ),
        DeclareLaunchArgument(
            "odometry_topic",
            default_value="/odom",
            description="The robot's odometry (nav_msgs/Odometry), for temporal_fusion odometry.",
        ),
        DeclareLaunchArgument(
            "sparse_points_topic",
            default_value="/lidar/points",
            description="LiDAR points (sensor_msgs/PointCloud2, float32 x y z), for scale_source sparse_points.",
        ),
        DeclareLaunchArgument(
            "use_sim_time", default_value="", description="Use /clock (true when playing a bag)." + from_file
        ),
        DeclareLaunchArgument(
            "autostart",
            default_value="",
            description="Configure and activate at start; false leaves it to a lifecycle manager." + from_file,
        ),
        DeclareLaunchArgument("node_name", default_value="depth_estimation", description="Name of the node."),
    ]
    return LaunchDescription([*arguments, OpaqueFunction(function=depth_node)])
