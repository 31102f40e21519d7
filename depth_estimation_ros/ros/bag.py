"""Offline processing of rosbag2 recordings with the node's own frame handling.

``depth-estimation bag --model MODEL --input IN_BAG --output OUT_BAG`` reads a rosbag2 (MCAP or
SQLite 3) with rosbags, runs every image through :class:`~depth_estimation_ros.ros.pipeline.DepthPipeline`
(the code the live node runs) and writes a new rosbag2 holding what the node would have published:

* Topics: the image topic's namespace plus the node's relative names, e.g. ``/camera/image_raw`` →
  ``/camera/depth/image``, ``/camera/depth/camera_info``, ``/camera/depth/points``,
  ``/camera/depth/confidence`` (and ``/camera/depth/image_raw`` with raw depth on). For a
  CompressedImage topic, the image_transport suffix ``/compressed`` is not part of the base topic
  (``/camera/image_raw/compressed`` → ``/camera/depth/...``).
* Types: genuine ROS 2 sensor_msgs Image, CameraInfo and PointCloud2 (CDR), header stamp and
  frame_id of the input image, written at the input image's log time.
* Pairing: by the node's own rule (:class:`~depth_estimation_ros.ros.pairing.FramePairing`), with
  log time as the clock: each image gets the CameraInfo of its own stamp (within
  ``camera_info_tolerance``) logged before it or at most ``camera_info_wait`` seconds after it;
  never another frame's. An image without one is a bad frame, counted with the reason.
* One odd frame never aborts a bag: any error while decoding or processing one frame (a
  :class:`~depth_estimation_ros.ros.pipeline.BadFrame` or anything else) is counted with its reason,
  the first few logged, and the frame skipped.
* Nothing silently wrong: the messages read are compared with the bag's own counts (metadata);
  a bag whose messages could not all be read, or in which no frame could be processed, is an error
  and no output is written.
* With ``copy_input`` (default) every input message of every topic is copied unchanged (raw CDR,
  the recorded message definitions and QoS), so the output bag replays completely.

Topic detection: without ``image_topic``, the one sensor_msgs Image topic carrying colour (topics
whose first message has a depth encoding such as 32FC1 or 16UC1 are not candidates), else the one
CompressedImage topic; without ``camera_info_topic``, the CameraInfo topic in the image's namespace
(``<ns>/camera_info`` when there are several). Missing or ambiguous topics raise a ValueError that
lists the bag's topics and types, and says why a candidate topic was not usable.

The output is written into a sibling staging folder (``.depth-estimation-tmp.PID.TOKEN.OUT``) and renamed
to ``OUT`` only when
complete: a failure or Ctrl-C leaves nothing that looks like a finished bag. An existing ``OUT`` is
never overwritten. Bags are written in rosbag2 format version 8 (numeric QoS in metadata.yaml,
which Humble's rosbag2 also parses; Iron, Jazzy and later read it too).
"""

from __future__ import annotations

import logging
import shutil
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from depth_estimation_ros.core.estimator import DepthEstimator
from depth_estimation_ros.core.files import create_staging_folder, refuse_overlap, remove_stale
from depth_estimation_ros.core.validation import load_yaml
from depth_estimation_ros.ros.inputs import FrameInput
from depth_estimation_ros.ros.messages import COLOUR_ENCODINGS, MessageTypes
from depth_estimation_ros.ros.odometry import PoseHistory
from depth_estimation_ros.ros.outputs import BY_TOPIC, TOPICS
from depth_estimation_ros.ros.pairing import Decision, FramePairing, InputMatch, stamp_of, stamp_text
from depth_estimation_ros.ros.parameters import DEFAULTS
from depth_estimation_ros.ros.pipeline import PIPELINE_OPTIONS, BadFrame, DepthPipeline

log = logging.getLogger(__name__)

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
ODOMETRY = "nav_msgs/msg/Odometry"
STORAGES = ("mcap", "sqlite3")
BAG_VERSION = 8  # rosbag2 metadata version written (8: Iron's; numeric QoS, parsed by Humble too)
DEFAULT_DISTRO = "humble"  # typestore when the bag does not name a known ROS 2 distribution
LOGGED_BAD_FRAMES = 5  # bad frames logged with their reason; the rest are only counted
# The node's pairing parameters, as command-line options of the same meaning (log time for the wait).
PAIRING_ARGUMENTS = ("camera_info_tolerance", "camera_info_wait", "sparse_depth_max_age")


def require_rosbags():
    """The rosbags modules used here, or a DependencyError saying how to install them."""
    try:
        from rosbags import rosbag2, typesys
    except ImportError as exc:
        from depth_estimation_ros.core.backends.base import DependencyError

        raise DependencyError(
            f"reading and writing rosbag2 files needs rosbags ({exc}); pip install 'depth_estimation_ros[ros]'"
        ) from None
    return rosbag2, typesys


def typestore_for(distro: str | None = None):
    """The rosbags typestore of a ROS 2 distribution (``humble``, ``jazzy``…; unknown → Humble).

    sensor_msgs Image, CompressedImage, CameraInfo and PointCloud2 are the same in every ROS 2
    distribution, so the choice only matters for the other types a bag may hold.
    """
    _, typesys = require_rosbags()
    store = getattr(typesys.Stores, f"ROS2_{(distro or '').upper()}", None)
    return typesys.get_typestore(store or getattr(typesys.Stores, f"ROS2_{DEFAULT_DISTRO.upper()}"))


def qos_profile(reliability: str = "reliable", depth: int = 1):
    """An offered QoS profile for metadata.yaml: keep last ``depth``, volatile, no deadline or lifespan.

    Durations are rmw's "infinite" (9223372036 s 854775807 ns), as rosbag2 records them.
    """
    require_rosbags()
    from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

    if reliability not in ("reliable", "best_effort"):
        raise ValueError(f"reliability must be 'reliable' or 'best_effort', got {reliability!r}")
    infinite = QosTime(9223372036, 854775807)
    kind = QosReliability.RELIABLE if reliability == "reliable" else QosReliability.BEST_EFFORT
    return Qos(QosHistory.KEEP_LAST, int(depth), kind, QosDurability.VOLATILE, infinite, infinite,
               QosLiveliness.AUTOMATIC, infinite, False)  # fmt: skip


def storage_plugin(storage: str):
    """rosbags' StoragePlugin for ``mcap`` or ``sqlite3``."""
    rosbag2, _ = require_rosbags()
    if storage not in STORAGES:
        raise ValueError(f"storage must be one of {STORAGES}, got {storage!r}")
    return rosbag2.StoragePlugin.MCAP if storage == "mcap" else rosbag2.StoragePlugin.SQLITE3


def bag_storage(path: str | Path) -> str:
    """Storage of a rosbag2 folder or file (``mcap`` or ``sqlite3``), from its storage file names."""
    path = Path(path)
    names = [p.name for p in path.iterdir()] if path.is_dir() else [path.name]
    if any(".mcap" in name for name in names):
        return "mcap"
    if any(".db3" in name for name in names):
        return "sqlite3"
    raise ValueError(f"{path} holds no .mcap or .db3 storage file; is it a rosbag2?")


# ---------------------------------------------------------------------------------------------
# Output folders that appear only when complete


def refuse_existing(output: Path) -> None:
    if output.exists() or output.is_symlink():
        raise ValueError(f"output bag {output} exists already; not overwriting it (remove it or choose another)")


@contextmanager
def staged_output(output: str | Path) -> Iterator[Path]:
    """A path to write a bag folder at, renamed to ``output`` only when the block completes.

    The bag is written inside a sibling staging folder (:func:`~depth_estimation_ros.core.files.create_staging_folder`),
    which is removed in every case; on an exception (Ctrl-C included) ``output`` is never created.
    """
    output = Path(output)
    refuse_existing(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(output.parent)  # what a killed run left; a live run's staging is kept
    partial = create_staging_folder(output.parent, output.name)
    try:
        staging = partial / output.name  # so the storage file is named after the output
        yield staging
        refuse_existing(output)
        staging.rename(output)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Topics


def namespace_of(topic: str, msgtype: str = IMAGE) -> str:
    """The namespace of an image topic (``/camera/image_raw`` → ``/camera``; root → ``""``).

    For a CompressedImage topic the image_transport suffix ``/compressed`` is dropped first.
    """
    base = topic.rstrip("/")
    if msgtype == COMPRESSED_IMAGE and base.endswith("/compressed"):
        base = base[: -len("/compressed")]
    return base.rsplit("/", 1)[0] if "/" in base else ""


def output_topics(image_topic: str, relative: tuple[str, ...] = TOPICS, msgtype: str = IMAGE) -> dict[str, str]:
    """Relative output name → absolute topic, as the node publishes them in the image's namespace."""
    namespace = namespace_of(image_topic, msgtype)
    return {name: f"{namespace}/{name}" for name in relative}


def describe_topics(reader) -> str:
    """The bag's topics with types and counts, on one line."""
    topics = reader.topics
    if not topics:
        return "the bag has no topics"
    return "topics: " + ", ".join(f"{t} ({info.msgtype}, {info.msgcount} msgs)" for t, info in sorted(topics.items()))


def _first_message(reader, topic: str, store):
    connections = [c for c in reader.connections if c.topic == topic]
    messages = reader.messages(connections=connections)
    try:
        for connection, _, raw in messages:
            return store.deserialize_cdr(raw, connection.msgtype)
    finally:
        messages.close()
    return None


def _unusable(reader, topic: str, msgtype: str, store) -> str | None:
    """Why an image topic cannot be the input (its first message is depth, or unreadable), or None."""
    try:
        first = _first_message(reader, topic, store)
    except Exception as exc:  # a damaged message: say so instead of failing
        return f"{topic}: its first message cannot be read ({type(exc).__name__}: {exc})"
    if first is None:
        return None
    if msgtype == COMPRESSED_IMAGE:
        return f"{topic}: compressed depth ({first.format})" if "compresseddepth" in first.format.lower() else None
    return None if first.encoding in COLOUR_ENCODINGS else f"{topic}: encoding {first.encoding}, not colour"


@dataclass(frozen=True)
class BagTopics:
    """The image and CameraInfo topics to process, and the image's message type."""

    image: str
    camera_info: str
    image_type: str
    sparse_depth: str | None = None  # the scale source's per-frame input (sparse depth, LiDAR points)
    sparse_depth_max_age: float = DEFAULTS["sparse_depth_max_age"]
    odometry: str | None = None  # nav_msgs/Odometry for temporal_fusion odometry

    @property
    def compressed(self) -> bool:
        return self.image_type == COMPRESSED_IMAGE


def detect_topics(
    reader,
    image_topic: str | None = None,
    camera_info_topic: str | None = None,
    compressed: bool | None = None,
    store=None,
) -> BagTopics:
    """Image and CameraInfo topics of an open rosbags Reader (see the module docstring)."""
    store = store or typestore_for(reader.ros_distro)
    types = {topic: info.msgtype for topic, info in reader.topics.items()}
    wanted = {None: (IMAGE, COMPRESSED_IMAGE), True: (COMPRESSED_IMAGE,), False: (IMAGE,)}[compressed]
    if image_topic is not None:
        if image_topic not in types:
            raise ValueError(f"image topic {image_topic} is not in the bag; {describe_topics(reader)}")
        if types[image_topic] not in wanted:
            raise ValueError(
                f"image topic {image_topic} is a {types[image_topic]}, expected {' or '.join(wanted)}; "
                f"{describe_topics(reader)}"
            )
    else:
        # colour only: a ground-truth or recorded depth image (32FC1, 16UC1) is not an input
        candidates: dict[str, list[str]] = {kind: [] for kind in wanted}
        rejected = []
        for topic, kind in sorted(types.items()):
            if kind in wanted:
                reason = _unusable(reader, topic, kind, store)
                candidates[kind].append(topic) if reason is None else rejected.append(reason)
        raw, packed = candidates.get(IMAGE, []), candidates.get(COMPRESSED_IMAGE, [])
        chosen = raw if raw else packed  # raw is lossless: prefer it to a compressed copy
        if len(chosen) != 1:
            what = "colour " + " or ".join(t.rsplit("/", 1)[1] for t in wanted)
            problem = f"no {what} topic" if not chosen else f"several {what} topics ({', '.join(chosen)})"
            why = f" Not usable: {'; '.join(rejected)}." if rejected else ""
            raise ValueError(f"{problem} to take images from; give --image-topic.{why} {describe_topics(reader)}")
        image_topic = chosen[0]
    image_type = types[image_topic]

    if camera_info_topic is not None:
        if types.get(camera_info_topic) != CAMERA_INFO:
            found = "is not in the bag" if camera_info_topic not in types else f"is a {types[camera_info_topic]}"
            raise ValueError(f"CameraInfo topic {camera_info_topic} {found}; {describe_topics(reader)}")
    else:
        namespace = namespace_of(image_topic, image_type)
        infos = [t for t, m in sorted(types.items()) if m == CAMERA_INFO and namespace_of(t) == namespace]
        if len(infos) > 1 and f"{namespace}/camera_info" in infos:
            infos = [f"{namespace}/camera_info"]
        if len(infos) != 1:
            problem = "no CameraInfo topic" if not infos else f"several CameraInfo topics ({', '.join(infos)})"
            raise ValueError(
                f"{problem} in the namespace {namespace or '/'} of {image_topic}; give --camera-info-topic. "
                f"{describe_topics(reader)}"
            )
        camera_info_topic = infos[0]
    return BagTopics(image_topic, camera_info_topic, image_type)


# ---------------------------------------------------------------------------------------------
# Copying connections


def _definition(connection, store) -> tuple[str, str] | None:
    """(message definition, RIHS01 hash) to register a copy of ``connection``; None if unknown."""
    _, typesys = require_rosbags()
    from rosbags.interfaces import MessageDefinitionFormat

    msgdef = connection.msgdef.data if connection.msgdef.format != MessageDefinitionFormat.NONE else ""
    if msgdef and connection.digest:
        return msgdef, connection.digest
    try:
        if msgdef:  # the bag's own definition (e.g. a Humble bag without type hashes)
            parse = typesys.get_types_from_msg if connection.msgdef.format == MessageDefinitionFormat.MSG else None
            types = parse(msgdef, connection.msgtype) if parse else typesys.get_types_from_idl(msgdef)
            scratch = typesys.get_typestore(typesys.Stores.EMPTY)
            scratch.register(types)
            return msgdef, scratch.hash_rihs01(connection.msgtype)
        generated, _ = store.generate_msgdef(connection.msgtype, ros_version=2)
        return generated, store.hash_rihs01(connection.msgtype)
    except Exception:  # any failure means the type cannot be described
        return None


def _copy_connection(writer, connection, store):
    """The output connection for an input connection, reusing an identical one; None if not copyable."""
    rosbag2, _ = require_rosbags()
    from rosbags.interfaces import ConnectionExtRosbag2

    ext = connection.ext if isinstance(connection.ext, ConnectionExtRosbag2) else ConnectionExtRosbag2("cdr", [])
    for existing in writer.connections:
        if existing.topic == connection.topic and existing.msgtype == connection.msgtype and existing.ext == ext:
            return existing
    definition = _definition(connection, store)
    if definition is None:
        return None
    msgdef, rihs01 = definition
    try:
        return writer.add_connection(
            connection.topic,
            connection.msgtype,
            msgdef=msgdef,
            rihs01=rihs01,
            serialization_format=ext.serialization_format,
            offered_qos_profiles=ext.offered_qos_profiles,
        )
    except rosbag2.WriterError as exc:
        log.warning("cannot copy %s (%s): %s", connection.topic, connection.msgtype, exc)
        return None


# ---------------------------------------------------------------------------------------------
# Processing


def _odometry_topic(reader, wanted: str | None) -> str:
    """The bag's nav_msgs/Odometry topic: ``wanted``, else its only one."""
    found = sorted(c.topic for c in reader.connections if c.msgtype == ODOMETRY)
    if wanted is not None:
        if wanted not in found:
            raise ValueError(f"odometry topic {wanted} is not a {ODOMETRY} topic of the bag; {describe_topics(reader)}")
        return wanted
    if len(found) != 1:
        what = "no" if not found else f"{len(found)} ({', '.join(found)}): pass --odometry-topic; it has"
        raise ValueError(f"temporal_fusion odometry needs the camera's odometry; the bag has {what} {ODOMETRY} "
                         f"topics; {describe_topics(reader)}")  # fmt: skip
    return found[0]


def _input_topic(reader, image_topic: str, wanted: str | None, source_input: FrameInput) -> str:
    """The bag's topic of the scale source's input: ``wanted``, else its name in the image's namespace."""
    types = {c.topic: c.msgtype for c in reader.connections}
    topic = wanted or f"{namespace_of(image_topic).rstrip('/')}/{source_input.name}"
    if types.get(topic) != source_input.msgtype:
        found = "is not in the bag" if topic not in types else f"is a {types[topic]}"
        hint = "" if wanted else f" (pass --{source_input.name.replace('_', '-')}-topic)"
        raise ValueError(
            f"{source_input.name.replace('_', ' ')} topic {topic} {found}{hint}; {describe_topics(reader)}"
        )
    return topic


def _readable(messages, problems: list[str]):
    """The messages of a rosbags iterator until the storage fails; the failure goes to ``problems``."""
    count = 0
    while True:
        try:
            item = next(messages)
        except StopIteration:
            return
        except Exception as exc:  # a damaged storage file (sqlite "malformed", MCAP record errors)
            problems.append(f"reading stopped after {count} messages: {type(exc).__name__}: {exc}")
            return
        count += 1
        yield item


def _progress_bar(total: int, enabled: bool, description: str):
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", desc=description, disable=not (enabled and sys.stderr.isatty()))


def process_bag(
    estimator_or_model: DepthEstimator | str | Path,
    input: str | Path,
    output: str | Path,
    image_topic: str | None = None,
    camera_info_topic: str | None = None,
    *,
    compressed: bool | None = None,
    storage: str | None = None,
    copy_input: bool = True,
    pipeline_options: dict[str, Any] | None = None,
    backend: str = "auto",
    estimator_options: dict[str, Any] | None = None,
    progress: bool = True,
    sparse_depth_topic: str | None = None,
    sparse_depth_max_age: float = DEFAULTS["sparse_depth_max_age"],
    camera_info_tolerance: float = DEFAULTS["camera_info_tolerance"],
    camera_info_wait: float = DEFAULTS["camera_info_wait"],
    odometry_topic: str | None = None,
    odometry_max_age: float = DEFAULTS["odometry_max_age"],
) -> dict[str, Any]:
    """Run the node's pipeline over a rosbag2 and write its outputs to a new rosbag2 ``output``.

    Args:
        estimator_or_model: a :class:`DepthEstimator`, or a model file opened with ``backend`` and
            ``estimator_options`` (``resize``, ``output_resolution``, ``min_confidence``…).
        input: rosbag2 folder (or a single .mcap / .db3 file).
        output: rosbag2 folder to create; must not exist.
        image_topic, camera_info_topic: detected when not given (see the module docstring).
        compressed: restrict detection to CompressedImage (True) or Image (False) topics.
        storage: ``mcap`` or ``sqlite3``; default: the input's.
        copy_input: also copy every input message unchanged.
        pipeline_options: :class:`DepthPipeline` options (``publish_raw_depth``, ``publish_points``,
            ``points_rgb``, ``points_decimation``, ``points_max_range``, ``publish_confidence``).
        progress: show a progress bar (only on a terminal).
        sparse_depth_topic: the topic of the scale source's per-frame input: sensor_msgs Image of
            sparse metric depth for a ``sparse_depth`` anchor, PointCloud2 for ``sparse_points``
            (default: the topic of that name and type in the image's namespace); paired
            with each image as the node pairs it (:class:`~.pairing.FramePairing`): the image waits
            ``camera_info_wait`` (log time) for the one of its stamp, within ``sparse_depth_max_age``.
        camera_info_tolerance, camera_info_wait: the node's parameters of the same names; the wait
            is measured in log time.
        odometry_topic, odometry_max_age: with ``temporal_fusion`` ``odometry`` (an estimator
            option), the nav_msgs/Odometry topic (default: the bag's only one) and how far (s) its
            stamp may be from an image's; poses are taken in log-time order as the node takes them.

    Returns:
        A summary: ``frames`` processed, ``bad_frames`` and the first reasons, ``unpaired_frames``
        (images no CameraInfo of their own came for; bad frames too), ``frames_without_sparse_depth``
        (with a sparse_depth anchor: processed without a sparse depth of their stamp, the anchor
        holding its scale), ``topics`` written with
        message counts, ``output_topics`` (relative → absolute), ``seconds`` and ``frames_per_second``.
    """
    rosbag2, _ = require_rosbags()
    start = time.perf_counter()
    source, target = Path(input), Path(output)
    if not source.exists():
        raise FileNotFoundError(f"input bag {source} does not exist")
    refuse_overlap(target, [("input bag", source)])
    refuse_existing(target)
    if storage is not None and storage not in STORAGES:
        raise ValueError(f"storage must be one of {STORAGES}, got {storage!r}")
    options = dict(pipeline_options or {})
    if unknown := sorted(set(options) - set(PIPELINE_OPTIONS)):
        raise ValueError(f"unknown pipeline options {unknown}; expected some of {list(PIPELINE_OPTIONS)}")

    if (metadata := source / "metadata.yaml").exists() or metadata.is_symlink():
        load_yaml(metadata, "bag metadata")  # bounded, duplicate keys refused, a FIFO never opened
    try:
        reader = rosbag2.Reader(source)
        reader.open()
    except Exception as exc:  # rosbags raises ReaderError, OSError, sqlite and YAML errors for damaged bags
        raise ValueError(f"cannot read bag {source}: {exc}") from None
    try:
        store = typestore_for(reader.ros_distro)
        topics = detect_topics(reader, image_topic, camera_info_topic, compressed, store)
        storage = storage or bag_storage(source)
        estimator = (
            estimator_or_model
            if isinstance(estimator_or_model, DepthEstimator)
            else DepthEstimator(estimator_or_model, backend, **(estimator_options or {}))
        )
        pipeline = DepthPipeline(estimator, MessageTypes.from_typestore(store), **options)
        implausible, anchoring = estimator.implausible, Counter(estimator.anchoring)  # it may have run before
        source_input = pipeline.frame_input
        if source_input is not None:
            found = _input_topic(reader, topics.image, sparse_depth_topic, source_input)
            topics = replace(topics, sparse_depth=found, sparse_depth_max_age=sparse_depth_max_age)
        if estimator.fusion_mode == "odometry":
            topics = replace(topics, odometry=_odometry_topic(reader, odometry_topic))
            pipeline.poses = PoseHistory(odometry_max_age)
        outputs = output_topics(topics.image, pipeline.topics, topics.image_type)
        if copy_input and (clash := sorted(set(outputs.values()) & set(reader.topics))):
            raise ValueError(
                f"the bag already has output topics {clash} (was it processed before?); "
                "use --no-copy-input or remap the input"
            )
        sparse = (InputMatch(source_input.name, topics.sparse_depth_max_age, registered=source_input.registered)
                  if topics.sparse_depth else None)  # fmt: skip
        pairing = FramePairing(camera_info_tolerance, camera_info_wait, sparse=sparse)
        summary = _run(reader, store, pipeline, topics, outputs, pairing, target, storage, copy_input, progress)
    finally:
        reader.close()
    seconds = time.perf_counter() - start
    summary.update(
        input=str(source),
        output=str(target),
        storage=storage,
        image_topic=topics.image,
        camera_info_topic=topics.camera_info,
        compressed=topics.compressed,
        backend=estimator.backend.describe(),
        implausible_depth_pixels=estimator.implausible - implausible,
        anchoring=dict(estimator.anchoring - anchoring),
        scale_source=estimator.anchor.source if estimator.anchor is not None else "none",
        plausible_depth=estimator.card.plausible_depth,
        seconds=seconds,
        frames_per_second=summary["frames"] / seconds if seconds > 0 else 0.0,
    )
    if (fusion := estimator.fusion) is not None:
        summary["temporal_fusion"] = {"mode": estimator.fusion_mode, "fused_frames": fusion.fused_frames,
                                      "resets": dict(fusion.resets)}  # fmt: skip
    return summary


def _run(reader, store, pipeline, topics, outputs, pairing, target, storage, copy_input, progress) -> dict[str, Any]:
    """The processing loop, writing into a staged output folder, renamed only if the bag was read
    whole and at least one frame was processed. Messages go to ``pairing`` in log-time order, with
    their log time as its clock, as they reach the node; each image is processed when paired."""
    rosbag2, _ = require_rosbags()
    image_ids = {c.id for c in reader.connections if c.topic == topics.image}
    info_ids = {c.id for c in reader.connections if c.topic == topics.camera_info}
    counts: Counter[str] = Counter()
    read: Counter[int] = Counter()
    frames = bad = unpaired = bad_infos = 0
    reasons: list[str] = []
    unreadable: list[str] = []
    not_copied: list[str] = []
    notes_seen: set[str] = set()
    sparse_ids = {c.id for c in reader.connections if c.topic == topics.sparse_depth}
    odometry_ids = {c.id for c in reader.connections if c.topic == topics.odometry}

    def skip(exc: Exception, where: str) -> None:
        nonlocal bad
        bad += 1
        reason = str(exc) if isinstance(exc, BadFrame) else f"{where}: {type(exc).__name__}: {exc}"  # BadFrame: named
        if len(reasons) < LOGGED_BAD_FRAMES:
            reasons.append(reason)
            log.warning("bad frame %s (skipped)", reason)

    def handle(decision: Decision) -> None:
        nonlocal frames, unpaired
        image, stamp = decision.image, stamp_of(decision.image)
        if decision.camera_info is None:
            unpaired += 1
            skip(BadFrame(decision.reason), "")
            return
        try:
            result = pipeline.process(image, decision.camera_info, topics.compressed, sparse=decision.sparse)
        except Exception as exc:  # one odd frame never aborts the bag
            skip(exc, f"image {stamp_text(stamp)}")
            return
        for note in result.notes:
            if note not in notes_seen:
                notes_seen.add(note)
                log.warning("image %s: %s", stamp_text(stamp), note)
        for name, message in result.messages.items():  # at the image's log time (the tag)
            writer.write(connections[name], decision.tag, store.serialize_cdr(message, BY_TOPIC[name].msgtype))
            counts[outputs[name]] += 1
        frames += 1

    with staged_output(target) as staging, rosbag2.Writer(
        staging, version=BAG_VERSION, storage_plugin=storage_plugin(storage)
    ) as writer:  # fmt: skip
        copies = {}
        if copy_input:
            for connection in reader.connections:
                copies[connection.id] = _copy_connection(writer, connection, store)
                if copies[connection.id] is None and connection.topic not in not_copied:
                    not_copied.append(connection.topic)
                    log.warning("not copying %s (%s): no message definition for it", connection.topic,
                                connection.msgtype)  # fmt: skip
        offered = [qos_profile(DEFAULTS["output_reliability"], DEFAULTS["output_depth"])]  # the node's
        connections = {
            name: writer.add_connection(topic, BY_TOPIC[name].msgtype, typestore=store, offered_qos_profiles=offered)
            for name, topic in outputs.items()
        }
        total = sum(c.msgcount for c in reader.connections if c.id in image_ids)
        with _progress_bar(total, progress, topics.image) as bar:
            for connection, timestamp, raw in _readable(reader.messages(), unreadable):
                read[connection.id] += 1
                if (copied := copies.get(connection.id)) is not None:
                    writer.write(copied, timestamp, raw)
                    counts[connection.topic] += 1
                now = timestamp * 1e-9
                if connection.id in info_ids:
                    try:
                        decisions = pairing.camera_info(store.deserialize_cdr(raw, connection.msgtype), now)
                    except Exception as exc:
                        bad_infos += 1
                        log.warning("undecodable CameraInfo at log time %d skipped: %s", timestamp, exc)
                        decisions = pairing.expire(now)
                elif connection.id in image_ids:
                    bar.update(1)
                    try:
                        decisions = pairing.image(store.deserialize_cdr(raw, connection.msgtype), now, tag=timestamp)
                    except Exception as exc:
                        skip(exc, f"log time {timestamp}")
                        decisions = pairing.expire(now)
                else:
                    decisions = None
                    if connection.id in sparse_ids:
                        try:
                            decisions = pairing.input(store.deserialize_cdr(raw, connection.msgtype), now)
                        except Exception as exc:
                            log.warning("undecodable sparse depth at log time %d skipped: %s", timestamp, exc)
                    elif connection.id in odometry_ids and pipeline.poses is not None:
                        try:
                            pipeline.poses.add(store.deserialize_cdr(raw, connection.msgtype))
                        except Exception as exc:
                            log.warning("odometry at log time %d skipped: %s", timestamp, exc)
                    if decisions is None:
                        decisions = pairing.expire(now)
                for decision in decisions:
                    handle(decision)
            for decision in pairing.close("arrived before the end of the bag"):
                handle(decision)
        unreadable += [
            f"{c.topic}: read {read[c.id]} of the {c.msgcount} messages the bag lists"
            for c in reader.connections
            if read[c.id] != c.msgcount
        ]
        if unreadable or not frames:
            raise BagError(unreadable, frames, bad, reasons, topics.image, total)
    if bad > LOGGED_BAD_FRAMES:
        log.warning("%d bad frames in all (the first %d logged)", bad, LOGGED_BAD_FRAMES)
    return {
        "frames": frames,
        "bad_frames": bad,
        "bad_frame_reasons": reasons,
        "bad_camera_infos": bad_infos,
        "unpaired_frames": unpaired,
        **({f"frames_without_{pairing.sparse.name}": pairing.missing[pairing.sparse.name]} if pairing.sparse else {}),
        "output_topics": dict(outputs),
        "topics": {topic: counts[topic] for topic in sorted(set(counts) | set(outputs.values()))},
        "not_copied": not_copied,
    }


class BagError(ValueError):
    """The bag could not be read whole, or no frame of it could be processed: nothing is written."""

    def __init__(self, unreadable: list[str], frames: int, bad: int, reasons: list[str], topic: str, total: int):
        if unreadable:
            text = f"the bag is damaged: {'; '.join(unreadable)}"
        elif total == 0:
            text = f"the image topic {topic} has no messages"
        else:
            text = (
                f"no frame of {topic} could be processed ({bad} of {total} bad, e.g. {reasons[0] if reasons else '?'})"
            )
        super().__init__(f"{text}; {frames} frame(s) processed, no output written")
        self.unreadable, self.frames, self.bad, self.reasons = unreadable, frames, bad, reasons
