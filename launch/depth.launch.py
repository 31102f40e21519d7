"""Launch the monocular depth node (a lifecycle node) on one camera.

    ros2 launch depth_estimation_ros depth.launch.py model:=/path/model.engine \\
        image_topic:=/camera/color/image_raw camera_info_topic:=/camera/color/camera_info

With autostart:=true (the default) the node is configured (parameters checked, model loaded) and
then activated (topics created) by this launch file. With autostart:=false it stays unconfigured
for a lifecycle manager or `ros2 lifecycle set <node> configure` / `activate`.

The parameters come from params_file (default: the installed config/depth.yaml); the model,
backend and use_sim_time arguments override it.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, LogInfo, RegisterEventHandler
from launch.conditions import IfCondition
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare
from lifecycle_msgs.msg import Transition


def generate_launch_description():
    model = LaunchConfiguration("model")
    backend = LaunchConfiguration("backend")
    params_file = LaunchConfiguration("params_file")
    namespace = LaunchConfiguration("namespace")
    image_topic = LaunchConfiguration("image_topic")
    camera_info_topic = LaunchConfiguration("camera_info_topic")
    use_sim_time = LaunchConfiguration("use_sim_time")
    autostart = LaunchConfiguration("autostart")
    node_name = LaunchConfiguration("node_name")

    arguments = [
        DeclareLaunchArgument(
            "model",
            description="Model file: checkpoint (.pt), ONNX graph (.onnx) or TensorRT engine (.engine).",
        ),
        DeclareLaunchArgument(
            "backend", default_value="auto", description="Inference backend: auto, tensorrt, onnxruntime or torch."
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
            "use_sim_time", default_value="false", description="Use /clock (set true when playing a bag)."
        ),
        DeclareLaunchArgument(
            "autostart",
            default_value="true",
            description="Configure and activate the node at start; false leaves it to a lifecycle manager.",
        ),
        DeclareLaunchArgument("node_name", default_value="depth_estimation", description="Name of the node."),
    ]

    depth_node = LifecycleNode(
        package="depth_estimation_ros",
        executable="depth_node",
        name=node_name,
        namespace=namespace,
        output="screen",
        parameters=[
            params_file,
            {
                # Typed explicitly: a path or name must stay a string whatever YAML would make of it.
                "model": ParameterValue(model, value_type=str),
                "backend": ParameterValue(backend, value_type=str),
                "use_sim_time": ParameterValue(use_sim_time, value_type=bool),
            },
        ],
        remappings=[
            ("image", image_topic),
            ("camera_info", camera_info_topic),
            ("image/compressed", [image_topic, "/compressed"]),
        ],
    )

    # unconfigured -> inactive: load the model.
    configure = EmitEvent(
        event=ChangeState(
            lifecycle_node_matcher=matches_action(depth_node),
            transition_id=Transition.TRANSITION_CONFIGURE,
        ),
        condition=IfCondition(autostart),
    )

    # inactive -> active once configuring succeeded. Only after *configuring*, so that a later
    # `ros2 lifecycle set ... deactivate` (active -> inactive) is not undone.
    activate_when_configured = RegisterEventHandler(
        OnStateTransition(
            target_lifecycle_node=depth_node,
            start_state="configuring",
            goal_state="inactive",
            entities=[
                LogInfo(msg="depth node configured; activating it."),
                EmitEvent(
                    event=ChangeState(
                        lifecycle_node_matcher=matches_action(depth_node),
                        transition_id=Transition.TRANSITION_ACTIVATE,
                    )
                ),
            ],
        ),
        condition=IfCondition(autostart),
    )

    return LaunchDescription([*arguments, depth_node, activate_when_configured, configure])
