"""Training loop: one GPU, several (``torchrun`` + DDP), or the CPU.

``depth-estimation train --config config/train/<name>.yaml [--set key=value ...] [--resume auto|PATH]``
(also ``python -m training.train``). Under ``torchrun`` every process trains on its share of the data
(DistributedSampler), gradients are all-reduced by DistributedDataParallel, and rank 0 logs,
validates and writes checkpoints.

Determinism and resume: the sample order of an epoch depends only on (seed, epoch), and each
sample's augmentation only on (seed, epoch, index), whatever the number of workers; the RNG state
of the process is stored at every epoch end. ``--resume`` restores weights, optimiser, scheduler,
AMP scaler, epoch, step and RNG state, so training 2 epochs equals training 1 and resuming for 1.
Checkpoints are written atomically every epoch (``last.pt``; ``best.pt`` by validation AbsRel).
Each records ``focal_length``, the training camera's fx at the network input, so the node can
correct the metric output for another camera (:func:`training_focal_length`).
A non-finite loss stops the run with a message; the last good checkpoint is left intact.

Nothing silently wrong: the config is checked against a schema built from :data:`DEFAULTS` and the
signatures of the model, dataset, augmentation and loss (unknown keys list the valid ones; types,
ranges, NaN/inf). A folder holding a run is continued only with ``--resume`` and replaced only with
``--overwrite``; a resumed run whose settings differ from its checkpoint's is refused unless
``--allow-changed-config`` (then the new optimiser and schedule settings are applied). Training
data with no valid depth is an error, not a finished run.
"""

from __future__ import annotations

import argparse
import copy
import logging
import math
import os
import random
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import yaml
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset
from tqdm import tqdm

from depth_estimation_ros.core.errors import UsageError, run_command
from depth_estimation_ros.core.files import load_yaml_mapping, write_text
from depth_estimation_ros.core.metrics import average_metrics, compute_metrics
from depth_estimation_ros.core.models import build_model, load_checkpoint, save_checkpoint
from depth_estimation_ros.core.validation import non_finite, parse_yaml
from training.augment import Augment, crop, scale, to_tensors
from training.losses import bind_loss, loss_of
from training.protocol import eval_scale

log = logging.getLogger("training")

DEFAULTS: dict[str, Any] = {
    "model": {"name": "acan"},
    "data": {
        "name": "synthetic",
        "train": {},
        "val": None,
        "val_fraction": 0.05,
        "input_size": [256, 352],
        "augment": {},
        "workers": 2,
        # fx (px) of the training camera at the network input, recorded in checkpoints; null: derived
        # from the training samples' K (training_focal_length)
        "focal_length": None,
    },
    "loss": {},
    "optim": {
        "name": "sgd",
        "lr": 2e-4,
        "momentum": 0.9,
        "weight_decay": 5e-4,
        "betas": [0.9, 0.999],
        "head_lr_mult": 10.0,
        "schedule": "poly",
        "power": 0.9,
        "step_epochs": 5,
        "gamma": 0.1,
    },
    "train": {
        "epochs": 50,
        "batch_size": 8,
        "amp": True,
        "clip_grad": 0.0,
        "seed": 0,
        "deterministic": False,
        "sync_bn": False,
        "log_every": 20,
        "image_every": 1,
    },
    "eval": {"min_depth": 1e-3, "max_depth": 10.0, "scale": None},
    "output": "runs/experiment",
}


# Value rules beyond the type of the default (dotted key → (test, what is expected)).
RULES: dict[str, tuple[Any, str]] = {
    "data.val_fraction": (lambda v: 0 < v < 1, "between 0 and 1"),
    "data.input_size": (lambda v: len(v) == 2 and all(x >= 1 for x in v), "[height, width], positive"),
    "data.workers": (lambda v: v >= 0, "non-negative"),
    "data.focal_length": (
        lambda v: v is None or (isinstance(v, int | float) and not isinstance(v, bool) and v > 0),
        "the training camera's focal length in pixels at the network input (> 0), or null (derived from "
        "the training samples' K)",
    ),
    "optim.name": (lambda v: v in ("sgd", "adam", "adamw"), "sgd, adam or adamw"),
    "optim.schedule": (lambda v: v in ("poly", "step", "constant"), "poly, step or constant"),
    "optim.lr": (lambda v: v > 0, "positive"),
    "optim.head_lr_mult": (lambda v: v > 0, "positive"),
    "optim.momentum": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "optim.weight_decay": (lambda v: v >= 0, "non-negative"),
    "optim.betas": (lambda v: len(v) == 2 and all(0 <= x < 1 for x in v), "two numbers in [0, 1)"),
    "optim.power": (lambda v: v > 0, "positive"),
    "optim.step_epochs": (lambda v: v >= 1, "at least 1"),
    "optim.gamma": (lambda v: v > 0, "positive"),
    "train.epochs": (lambda v: v >= 1, "at least 1"),
    "train.batch_size": (lambda v: v >= 1, "at least 1"),
    "train.clip_grad": (lambda v: v >= 0, "non-negative (0: off)"),
    "train.seed": (lambda v: v >= 0, "non-negative"),
    "train.log_every": (lambda v: v >= 1, "at least 1"),
    "train.image_every": (lambda v: v >= 1, "at least 1"),
    "eval.min_depth": (lambda v: v > 0, "positive"),
    "eval.max_depth": (lambda v: v > 0, "positive"),
    "eval.scale": (
        lambda v: v is None or (isinstance(v, int | float) and not isinstance(v, bool) and v > 0),
        "a positive image scale, or null (the middle of data.augment.scale)",
    ),
}
# Settings a resumed run may change freely (they do not alter what is trained).
FREE_ON_RESUME = ("output", "data.workers", "train.log_every", "train.image_every")
RUN_FILES = ("last.pt", "best.pt", "config.yaml")


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; training stopped before the weights were touched."""


# --------------------------------------------------------------------------- configuration


def merge(base: dict, update: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in update.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def apply_override(config: dict, assignment: str) -> None:
    """``a.b.c=value``; the value is parsed as YAML (numbers, ``1e-4`` included, booleans, lists)."""
    key, sep, raw = assignment.partition("=")
    if not sep or not key:
        raise UsageError(f"--set expects key=value, got {assignment!r}")
    node = config
    *parents, leaf = key.split(".")
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise UsageError(f"--set {assignment}: {part!r} is not a section")
    try:
        node[leaf] = parse_yaml(raw)
    except Exception as exc:
        raise UsageError(f"--set {assignment}: the value is not valid YAML ({' '.join(str(exc).split())})") from None


def load_config(path: str | os.PathLike | None, overrides: list[str] = ()) -> dict:
    """DEFAULTS, updated by the file, then by ``--set`` overrides; checked against the schema."""
    config = DEFAULTS
    if path:
        config = merge(DEFAULTS, load_yaml_mapping(path, "training config"))
    config = copy.deepcopy(config)
    for assignment in overrides:
        apply_override(config, assignment)
    problems = check_config(config)
    if problems:
        source = f"{path} with --set" if path and overrides else path or "--set"
        raise UsageError(f"{source}: {'; '.join(problems)}")
    return config


def keyword_options(factory, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """Keyword options of a callable and their defaults (``inspect.Parameter.empty`` if required)."""
    import inspect

    return {
        name: p.default
        for name, p in inspect.signature(factory).parameters.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and name not in skip
    }


def open_sections(config: dict) -> dict[str, dict[str, Any]]:
    """Sections whose keys are a callable's options: dotted path → option → default."""
    from depth_estimation_ros.core.models import list_models, model_class

    sections = {}
    name = config["model"].get("name") if isinstance(config.get("model"), dict) else None
    if name in list_models():
        sections["model"] = {"name": name, **keyword_options(model_class(name))}
        # the trainer passes the network outputs, the target and what the loss takes from the model
        loss, from_model = loss_of(name)
        sections["loss"] = keyword_options(loss, skip=("outputs", "depth", *from_model))
    data = config.get("data")
    if isinstance(data, dict):
        if data.get("name") in DATASETS:
            options = keyword_options(dataset_factory(data["name"]), skip=("transform",))
            sections["data.train"] = sections["data.val"] = options
        sections["data.augment"] = keyword_options(Augment, skip=("size",))
    return sections


def check_config(config: dict) -> list[str]:
    """Every problem of a merged config, each naming the key and what is expected."""
    from depth_estimation_ros.core.models import list_models

    problems = [f"{where} is not finite: expected a finite number" for where in non_finite(config)]
    if unknown := sorted(set(config) - set(DEFAULTS)):
        problems.append(f"unknown section(s) {unknown}; valid sections: {', '.join(DEFAULTS)}")
    model = config.get("model")
    if not isinstance(model, dict) or model.get("name") not in list_models():
        given = model.get("name") if isinstance(model, dict) else model
        problems.append(f"model.name is {given!r}: expected one of {list_models()}")
    data = config.get("data")
    if isinstance(data, dict) and data.get("name") not in DATASETS:
        problems.append(f"data.name is {data.get('name')!r}: expected one of {list(DATASETS)}")
    return problems + check_section(config, DEFAULTS, "", open_sections(config))


def check_section(values: Any, default: Any, where: str, sections: dict) -> list[str]:
    """Check ``values`` against the default at ``where``: a section, a callable's options or a value."""
    if where in sections or isinstance(default, dict):
        if values is None and default is None:
            return []
        if not isinstance(values, dict):
            return [f"{where} is {values!r}: expected a mapping"]
        known = sections.get(where, default)
        if where not in sections and where in ("model", "loss", "data.train", "data.val", "data.augment"):
            return []  # a callable's options, unknown because its name is wrong (reported already)
        problems = []
        for key, value in values.items():
            path = f"{where}.{key}" if where else key
            if key not in known:
                if where:  # unknown sections are reported once, above
                    what = "option" if where in sections else "key"
                    problems.append(f"{path}: unknown {what}; valid {what}s of {where}: {', '.join(known)}")
            else:
                problems += check_section(value, known[key], path, sections)
        return problems
    return check_value(where, values, default)


def _kind(value: Any) -> str | None:
    if isinstance(value, bool):
        return "a boolean (true/false)"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    return None  # None, a required option (no default) or an object: any value


def check_value(where: str, value: Any, default: Any) -> list[str]:
    """``value`` must be of the default's kind (an integer where a number is expected is fine),
    then pass its rule in :data:`RULES`."""
    expected, given = _kind(default), _kind(value)
    if isinstance(value, float) and not math.isfinite(value):  # NaN: reported once
        return []
    rule = RULES.get(where)
    if expected is None:  # any kind of value (e.g. a default of null): the rule alone decides
        return [f"{where} is {value!r}: expected {rule[1]}"] if rule and not rule[0](value) else []
    if given != expected and not (expected == "a number" and given == "an integer"):
        return [f"{where} is {value!r}: expected {expected}"]
    nums = ("a number", "an integer")
    if expected == "a list" and default and _kind(default[0]) in nums and any(_kind(v) not in nums for v in value):
        return [f"{where} is {value!r}: expected a list of numbers"]
    if rule and not rule[0](value):
        return [f"{where} is {value!r}: expected {rule[1]}"]
    return []


def flatten(config: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in config.items():
        path = f"{prefix}{key}"
        out.update(flatten(value, f"{path}.") if isinstance(value, dict) and value else {path: value})
    return out


def config_changes(old: dict, new: dict) -> list[str]:
    """``key: old → new`` for settings that differ (except :data:`FREE_ON_RESUME`)."""
    before, after = flatten(old), flatten(new)
    keys = sorted(k for k in set(before) | set(after) if not k.startswith(FREE_ON_RESUME))
    missing = "(unset)"
    return [
        f"{k}: {before.get(k, missing)} → {after.get(k, missing)}"
        for k in keys
        if before.get(k, missing) != after.get(k, missing)
    ]


# --------------------------------------------------------------------------- data


DATASETS = ("synthetic", "nyu_mat", "nyu_pairs", "kitti")


def dataset_factory(name: str):
    if name == "synthetic":
        from training.datasets.synthetic import SyntheticDataset

        return SyntheticDataset
    if name == "nyu_mat":
        from training.datasets.nyu import NYUDepthV2Mat

        return NYUDepthV2Mat
    if name == "nyu_pairs":
        from training.datasets.nyu import NYUDepthV2Pairs

        return NYUDepthV2Pairs
    if name == "kitti":
        from training.datasets.kitti import KittiEigen

        return KittiEigen
    raise ValueError(f"unknown dataset {name!r}: expected synthetic, nyu_mat, nyu_pairs or kitti")


def centre_view(sample: dict, size: tuple[int, int]) -> dict:
    """Scale (camera follows) so the image covers ``size``, then crop its centre: validation input."""
    h, w = sample["image"].shape[:2]
    factor = max(size[0] / h, size[1] / w)
    if factor != 1:
        sample = scale(sample, factor)
    h, w = sample["image"].shape[:2]
    return crop(sample, (h - size[0]) // 2, (w - size[1]) // 2, *size)


class TrainingView(Dataset):
    """A dataset seen through augmentation that is deterministic per (seed, epoch, index)."""

    def __init__(self, dataset: Dataset, augment: Augment, seed: int):
        self.dataset, self.augment, self.seed, self.epoch = dataset, augment, seed, 0

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        self.augment.rng = np.random.default_rng([self.seed, self.epoch, index])
        return to_tensors(self.augment(self.dataset[index]))


class ValidationView(Dataset):
    def __init__(self, dataset: Dataset, size: tuple[int, int]):
        self.dataset, self.size = dataset, size

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        return to_tensors(centre_view(self.dataset[index], self.size))


def build_datasets(config: dict) -> tuple[Dataset, Dataset]:
    """Training and validation sets. Without a ``val`` section, a fixed ``val_fraction`` of the
    training set is held out (never the test split)."""
    data = config["data"]
    factory = dataset_factory(data["name"])
    size = tuple(data["input_size"])
    train = factory(**data["train"])
    if data.get("val"):
        val = factory(**data["val"])
    else:
        order = np.random.default_rng(config["train"]["seed"]).permutation(len(train))
        n_val = max(1, round(len(train) * data["val_fraction"]))
        val, train = Subset(train, order[:n_val].tolist()), Subset(train, sorted(order[n_val:].tolist()))
    augment = Augment(size=size, **data["augment"])
    return TrainingView(train, augment, config["train"]["seed"]), ValidationView(val, size)


FOCAL_SAMPLES = 64  # evenly spaced training samples whose cameras give the recorded focal length


def sample_camera(dataset: Dataset, index: int) -> tuple[np.ndarray, tuple[int, int]] | None:
    """``(K, (H, W))`` of item ``index`` before augmentation, or None when the sample has no K.

    A dataset's ``camera`` answers without reading pixels where it can; other datasets are read.
    """
    while isinstance(dataset, Subset):
        dataset, index = dataset.dataset, int(dataset.indices[index])
    if callable(getattr(dataset, "camera", None)):
        K, size = dataset.camera(index)
        return np.asarray(K, dtype=np.float64), (int(size[0]), int(size[1]))
    sample = dataset[index]
    if not isinstance(sample, dict) or sample.get("K") is None:
        return None
    return np.asarray(sample["K"], dtype=np.float64), tuple(int(n) for n in np.shape(sample["depth"])[:2])


def reference_scale(config: dict) -> tuple[float, float] | None:
    """The training pipeline's scale augmentation with its random draw pinned to the recipe's scale.

    ``eval_scale(config)`` (``eval.scale``, the scale the recipe evaluates whole frames at, else the
    middle of ``data.augment.scale``), kept within ``data.augment.scale``; None when the pipeline
    does not scale (random crops at the native scale).
    """
    low_high = (config["data"].get("augment") or {}).get("scale")
    if not low_high:
        return None
    s = min(max(eval_scale(config), float(low_high[0])), float(low_high[1]))
    return (s, s)


def training_focal_length(config: dict, dataset: Dataset, samples: int = FOCAL_SAMPLES) -> float | None:
    """fx in pixels of the training camera at the network input: the checkpoints' ``focal_length``.

    ``data.focal_length`` when the config sets it. Otherwise it is read from the training samples'
    own K, as the network sees them after the pipeline's geometry without its randomness: the
    median, over up to ``samples`` evenly spaced training samples, of the fx that
    :class:`~training.augment.Augment` (the training augmentation itself, run on a blank frame of
    the sample's size and K) gives with the random scale draw pinned to :func:`reference_scale`,
    raised to cover ``data.input_size`` as in training. Crop, rotation and flip leave fx as it is;
    so does ``keep_focal`` scaling (depth is scaled instead); without ``data.augment.scale`` frames
    are cropped at the native scale and fx is the dataset's.

    Why not the median of the augmented fx: random scaling with depth kept shows the network the
    same depths over a range of focal lengths, so no single one is exact; the recipe's reference
    scale is the one it evaluates at, so evaluating on the training camera needs no correction and
    the figures of the protocol stay those of the uncorrected model. The median over samples copes
    with sets that mix cameras (KITTI's calibration days). None when the samples carry no K.
    """
    data = config["data"]
    if data.get("focal_length") is not None:
        return float(data["focal_length"])
    if len(dataset) == 0:
        return None
    aug = data.get("augment") or {}
    geometry = Augment(
        size=tuple(data["input_size"]), scale=reference_scale(config), keep_focal=bool(aug.get("keep_focal")), flip=0.0
    )
    indices = np.unique(np.linspace(0, len(dataset) - 1, min(samples, len(dataset))).round().astype(int))
    by_camera: dict[tuple, float] = {}
    values = []
    for index in indices:
        camera = sample_camera(dataset, int(index))
        if camera is None:
            return None
        K, (h, w) = camera
        key = (K.tobytes(), h, w)
        if key not in by_camera:
            blank = {"image": np.zeros((h, w, 3), np.uint8), "depth": np.zeros((h, w), np.float32),
                     "valid": np.zeros((h, w), bool), "K": K}  # fmt: skip
            by_camera[key] = float(geometry(blank)["K"][0, 0])
        values.append(by_camera[key])
    return float(np.median(values))


# --------------------------------------------------------------------------- optimisation


def build_optimizer(model: torch.nn.Module, optim: dict) -> torch.optim.Optimizer:
    """Encoder at the base learning rate, new layers at ``head_lr_mult`` times it (ACAN: 10×)."""
    encoder = [p for n, p in model.named_parameters() if n.startswith("encoder.")]
    head = [p for n, p in model.named_parameters() if not n.startswith("encoder.")]
    groups = [{"params": encoder, "lr": optim["lr"]}, {"params": head, "lr": optim["lr"] * optim["head_lr_mult"]}]
    if optim["name"] == "sgd":
        return torch.optim.SGD(groups, lr=optim["lr"], momentum=optim["momentum"], weight_decay=optim["weight_decay"])
    if optim["name"] == "adam":
        return torch.optim.Adam(groups, lr=optim["lr"], betas=tuple(optim["betas"]), weight_decay=optim["weight_decay"])
    if optim["name"] == "adamw":
        return torch.optim.AdamW(
            groups, lr=optim["lr"], betas=tuple(optim["betas"]), weight_decay=optim["weight_decay"]
        )
    raise ValueError(f"unknown optimiser {optim['name']!r}: expected sgd, adam or adamw")


def build_scheduler(optimizer, optim: dict, steps_per_epoch: int, epochs: int):
    """Per-iteration schedule: ``poly`` (1 − t/T)^power, ``step`` (×gamma every step_epochs) or ``constant``."""
    total = max(1, steps_per_epoch * epochs)
    if optim["schedule"] == "poly":
        factor = lambda step: (1 - min(step, total - 1) / total) ** optim["power"]  # noqa: E731
    elif optim["schedule"] == "step":
        factor = lambda step: optim["gamma"] ** (step // (steps_per_epoch * optim["step_epochs"]))  # noqa: E731
    elif optim["schedule"] == "constant":
        factor = lambda step: 1.0  # noqa: E731
    else:
        raise ValueError(f"unknown schedule {optim['schedule']!r}: expected poly, step or constant")
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


# --------------------------------------------------------------------------- state


# The legacy global numpy RNG is saved and restored because third-party code may draw from it.
def rng_state() -> dict:
    bit_generator = np.random.get_state()  # noqa: NPY002
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [bit_generator[0], torch.from_numpy(bit_generator[1].astype(np.int64)), *bit_generator[2:]],
        "python": list(random.getstate()[1]),
    }


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))  # noqa: NPY002
    random.setstate((3, tuple(state["python"]), None))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002
    torch.manual_seed(seed)


def deterministic_cuda() -> None:
    """Deterministic kernels on CUDA (``train.deterministic``): cuDNN's fixed algorithms instead of
    benchmarking, cuBLAS with a fixed workspace (needed for reproducible GEMMs), and PyTorch's
    deterministic implementations. Ops without one (the backward of bilinear upsampling, used by
    both networks' decoders, and of adaptive average pooling) stay as they are and are warned about
    once: runs then agree closely but not bit for bit. The CPU path needs none of this: for a fixed
    thread count it is deterministic as it is."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.use_deterministic_algorithms(True, warn_only=True)


# --------------------------------------------------------------------------- the loop


class Trainer:
    """``resume``: ``"auto"`` (OUTPUT/last.pt when there is one, else a fresh start) or a path.
    ``overwrite``: start afresh in a folder that holds a run (its checkpoints are replaced).
    ``allow_changed_config``: resume even if settings differ from the checkpoint's (applied)."""

    def __init__(
        self, config: dict, resume: str | None = None, overwrite: bool = False, allow_changed_config: bool = False
    ):
        self.config = config
        self.output = Path(config["output"])
        existing = [name for name in RUN_FILES if (self.output / name).exists()]
        # A folder is a run once it has a checkpoint: one that failed before its first (a bad dataset,
        # Ctrl-C in epoch 1) left only config.yaml, which the retry rewrites.
        checkpoints = [name for name in existing if name.endswith(".pt")]
        if resume == "auto" and not (self.output / "last.pt").is_file():
            log.info("--resume auto: no %s yet, starting a new run", self.output / "last.pt")
            resume = None
        if checkpoints and not resume and not overwrite:
            raise FileExistsError(
                f"{self.output} holds a training run ({', '.join(checkpoints)}); continue it with --resume auto, "
                "or pass --overwrite to start over (its checkpoints will be replaced)"
            )
        if self.output.exists() and not self.output.is_dir():
            raise NotADirectoryError(f"output {self.output} is a file, expected a folder for the run")
        self.distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
        if self.distributed and not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        self.rank = dist.get_rank() if self.distributed else 0
        self.world = dist.get_world_size() if self.distributed else 1
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
        train_cfg = config["train"]
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
            if train_cfg["deterministic"]:
                deterministic_cuda()
        seed_everything(train_cfg["seed"] + self.rank)

        self.model = build_model(**config["model"]).to(self.device)
        self.train_set, self.val_set = build_datasets(config)
        self.focal_length = training_focal_length(config, self.train_set.dataset)
        self.focal_source = "the training samples' K" if config["data"]["focal_length"] is None else "data.focal_length"
        if len(self.train_set) < train_cfg["batch_size"] * self.world:
            raise ValueError(
                f"training set has {len(self.train_set)} samples, fewer than one batch of "
                f"{train_cfg['batch_size']} on each of {self.world} process(es)"
            )
        self.sampler = DistributedSampler(
            self.train_set,
            num_replicas=self.world,
            rank=self.rank,
            shuffle=True,
            seed=train_cfg["seed"],
            drop_last=True,
        )
        self.steps_per_epoch = len(self.sampler) // train_cfg["batch_size"]
        self.optimizer = build_optimizer(self.model, config["optim"])
        self.scheduler = build_scheduler(self.optimizer, config["optim"], self.steps_per_epoch, train_cfg["epochs"])
        self.amp = bool(train_cfg["amp"]) and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.loss_fn = bind_loss(self.model, config["loss"])
        self.epoch, self.step, self.best = 0, 0, math.inf
        if resume:
            self.restore(self.output / "last.pt" if resume == "auto" else Path(resume), allow_changed_config)
        if self.rank == 0:
            if self.focal_length is None:
                log.warning("the training samples carry no intrinsics K: checkpoints record no focal_length, so the "
                            "node cannot correct for another camera (set data.focal_length to record one)")  # fmt: skip
            else:
                log.info("training camera at the network input: fx %.3f px (%s)", self.focal_length, self.focal_source)
        self.net = self.model
        if self.distributed:
            if train_cfg["sync_bn"]:
                self.net = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.net)
            self.net = DistributedDataParallel(
                self.net, device_ids=[local_rank] if self.device.type == "cuda" else None
            )
        self.writer = None
        if self.distributed:  # every rank has checked the folder before rank 0 writes into it
            dist.barrier()
        if self.rank == 0:
            self.output.mkdir(parents=True, exist_ok=True)
            if overwrite and not resume:  # an old best.pt must not outlive the run it came from
                for name in existing:
                    (self.output / name).unlink()
            write_text(self.output / "config.yaml", yaml.safe_dump(config, sort_keys=False), overwrite=True)

    # -- checkpoints

    def state(self) -> dict:
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "best_abs_rel": self.best,
            "rng": rng_state(),
            # not where the run was written: two runs of one config then give byte-identical checkpoints
            "config": {k: v for k, v in self.config.items() if k != "output"},
            "focal_length": self.focal_length,
        }

    def save(self, name: str, metrics: dict | None = None) -> Path:
        extra = {"training": self.state(), "metrics": metrics or {}, "eval": {"scale": eval_scale(self.config)}}
        return save_checkpoint(
            self.model,
            self.output / name,
            input_size=self.config["data"]["input_size"],
            extra=extra,
            focal_length=self.focal_length,
        )

    def restore(self, path: Path, allow_changed_config: bool = False) -> None:
        state = load_checkpoint(path)
        training = state["extra"].get("training")
        if not training:
            raise ValueError(f"{path} holds no training state to resume from (a weights-only checkpoint?)")
        if state["model"] != self.model.config:
            raise ValueError(f"{path} was trained with model {state['model']}, the config asks for {self.model.config}")
        # a key added to DEFAULTS after the run started is at its default there, not a change
        changes = config_changes(merge(DEFAULTS, training.get("config", {})), self.config)
        if changes and not allow_changed_config:
            raise ValueError(
                f"{path} was trained with other settings: {'; '.join(changes)}. Resume with the checkpoint's "
                "settings, or pass --allow-changed-config to continue with the new ones"
            )
        self.model.load_state_dict(state["state_dict"])
        fresh = [{k: v for k, v in group.items() if k != "params"} for group in self.optimizer.param_groups]
        same_optimiser = training.get("config", {}).get("optim", {}).get("name") == self.config["optim"]["name"]
        if same_optimiser:
            self.optimizer.load_state_dict(training["optimizer"])
        self.scaler.load_state_dict(training["scaler"])
        self.epoch, self.step, self.best = training["epoch"], training["step"], training["best_abs_rel"]
        if changes:  # the new settings apply from here on: hyperparameters, and the schedule at this step
            log.warning("resuming with changed settings: %s", "; ".join(changes))
            for group, settings, factor in zip(self.optimizer.param_groups, fresh, self.scheduler.lr_lambdas,
                                               strict=True):  # fmt: skip
                group.update(settings, lr=settings["initial_lr"] * factor(self.step))
            self.scheduler.last_epoch = self.step
        else:
            self.scheduler.load_state_dict(training["scheduler"])
        set_rng_state(training["rng"])
        # the run keeps the training camera it started with, unless the config now sets one
        stored = training["focal_length"] if "focal_length" in training else state.get("focal_length")
        if stored is not None and self.config["data"]["focal_length"] is None:
            moved = self.focal_length is not None and not math.isclose(stored, self.focal_length, rel_tol=1e-6)
            if moved and self.rank == 0:
                log.warning("%s recorded a training focal length of %.3f px, the training data now gives %.3f px; "
                            "keeping %.3f px (set data.focal_length to change it)", path, stored,
                            self.focal_length, stored)  # fmt: skip
            self.focal_length, self.focal_source = float(stored), f"kept from {path}"
        if self.rank == 0:
            log.info("resumed from %s at epoch %d (step %d)", path, self.epoch, self.step)

    # -- loop

    def loader(self) -> DataLoader:
        self.sampler.set_epoch(self.epoch)
        self.train_set.epoch = self.epoch
        workers = self.config["data"]["workers"]
        return DataLoader(
            self.train_set,
            batch_size=self.config["train"]["batch_size"],
            sampler=self.sampler,
            num_workers=workers,
            pin_memory=self.device.type == "cuda",
            drop_last=True,
            persistent_workers=False,
            generator=torch.Generator().manual_seed(self.config["train"]["seed"] + self.epoch),
        )

    def train_epoch(self) -> dict[str, float]:
        self.net.train()
        totals: dict[str, float] = {}
        batches = self.loader()
        bar = tqdm(batches, desc=f"epoch {self.epoch + 1}/{self.config['train']['epochs']}",
                   disable=self.rank != 0 or not sys.stderr.isatty(), leave=False)  # fmt: skip
        autocast = torch.autocast("cuda", dtype=torch.float16) if self.amp else nullcontext()
        valid = torch.zeros((), dtype=torch.float64, device=self.device)
        for batch in bar:
            image = batch["image"].to(self.device, non_blocking=True)
            depth = batch["depth"].to(self.device, non_blocking=True)
            valid += (depth > 0).sum()
            with autocast:
                terms = self.loss_fn(self.net(image), depth)
            self.check_finite(terms["loss"], depth)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(terms["loss"]).backward()
            if self.config["train"]["clip_grad"]:
                self.scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config["train"]["clip_grad"])
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.scheduler.step()
            self.step += 1
            for key, value in terms.items():
                totals[key] = totals.get(key, 0.0) + float(value.detach())
            if self.rank == 0:
                bar.set_postfix(loss=f"{float(terms['loss'].detach()):.4f}")
                if self.step % self.config["train"]["log_every"] == 0:
                    self.log_scalars("train", {k: float(v.detach()) for k, v in terms.items()})
                    self.log_scalars("lr", {"encoder": self.optimizer.param_groups[0]["lr"]})
        if self.distributed:
            dist.all_reduce(valid)
        if valid.item() == 0:
            raise ValueError(
                f"no training sample of epoch {self.epoch + 1} has valid depth (all zero or invalid): check "
                "data.train (depth files, their encoding and depth range)"
            )
        return {k: v / max(1, self.steps_per_epoch) for k, v in totals.items()}

    def check_finite(self, loss: torch.Tensor, depth: torch.Tensor | None = None) -> None:
        finite = torch.isfinite(loss.detach()).float()
        if self.distributed:  # every rank stops together
            dist.all_reduce(finite, op=dist.ReduceOp.MIN)
        if finite.item() < 1:
            last = self.output / "last.pt"
            kept = f"the last good checkpoint {last} is intact" if last.exists() else "no checkpoint was written yet"
            if depth is not None and not bool((depth > 0).any()):
                kept += "; no pixel of this batch has valid depth: check the depth files and their encoding"
            raise NonFiniteLossError(
                f"loss is {loss.item()} at epoch {self.epoch + 1}, step {self.step + 1}; stopping ({kept}). "
                "Lower optim.lr or train.clip_grad, or check the data for bad depth."
            )

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        self.model.eval()
        cap = self.config["eval"]
        loader = DataLoader(self.val_set, batch_size=self.config["train"]["batch_size"], num_workers=0)
        rows, sample = [], None
        for batch in loader:
            depth = self.model(batch["image"].to(self.device))["depth"].float().cpu().numpy()
            for pred, gt in zip(depth[:, 0], batch["depth"][:, 0].numpy(), strict=True):
                rows.append(compute_metrics(pred, gt, cap["min_depth"], cap["max_depth"]))
            if sample is None:
                sample = (batch["image"][0], depth[0, 0], batch["depth"][0, 0].numpy())
        metrics = average_metrics(rows)
        self.log_scalars("val", {k: v for k, v in metrics.items() if k not in ("count", "skipped")})
        if sample is not None and (self.epoch + 1) % self.config["train"]["image_every"] == 0:
            self.log_sample(*sample)
        return metrics

    def log_scalars(self, prefix: str, values: dict[str, float]) -> None:
        writer = self.tensorboard()
        if writer is not None:
            for key, value in values.items():
                writer.add_scalar(f"{prefix}/{key}", value, self.step)

    def log_sample(self, image: torch.Tensor, pred: np.ndarray, gt: np.ndarray) -> None:
        from depth_estimation_ros.core.visualize import colorize, side_by_side

        writer = self.tensorboard()
        if writer is not None:
            rgb = (image.permute(1, 2, 0).numpy() * 255).astype(np.uint8)
            lo, hi = self.model.min_depth, self.model.max_depth
            panel = side_by_side(rgb, colorize(pred, lo, hi), colorize(np.where(gt > 0, gt, np.nan), lo, hi))
            writer.add_image("val/rgb_pred_gt", panel, self.step, dataformats="HWC")

    def tensorboard(self):
        if self.rank != 0:
            return None
        if self.writer is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is optional
                self.writer = False
            else:
                self.writer = SummaryWriter(str(self.output / "tensorboard"))
        return self.writer or None

    def check_replicas(self) -> None:
        """After DDP training every process must hold the same weights; say so, or fail loudly."""
        checksum = torch.stack([p.detach().double().sum() for p in self.model.parameters()]).sum().view(1)
        spread = torch.cat([checksum, -checksum])
        dist.all_reduce(spread, op=dist.ReduceOp.MAX)
        if spread[0] + spread[1] > 1e-6 * max(1.0, abs(checksum.item())):
            raise RuntimeError(f"DDP replicas diverged: weight checksums differ by {float(spread[0] + spread[1])}")
        if self.rank == 0:
            log.info("replicas identical across %d processes", self.world)

    def fit(self, stop_after: int | None = None) -> dict[str, float]:
        """Train to ``train.epochs`` (or stop after epoch ``stop_after``, as a crash would)."""
        epochs = self.config["train"]["epochs"]
        metrics: dict[str, float] = {}
        while self.epoch < min(epochs, stop_after or epochs):
            losses = self.train_epoch()
            self.epoch += 1
            scored = torch.ones(1, device=self.device)
            if self.rank == 0:
                metrics = self.validate()
                scored[0] = float(metrics["count"] > 0)
            if self.distributed:  # every rank stops together
                dist.broadcast(scored, 0)
            if scored.item() == 0:
                raise ValueError(
                    "no validation sample has valid depth within eval.min_depth..max_depth, so no checkpoint "
                    "can be scored: check data.val (or data.val_fraction) and the eval caps"
                )
            if self.rank == 0:
                improved = metrics["abs_rel"] < self.best
                self.best = min(self.best, metrics["abs_rel"]) if math.isfinite(metrics["abs_rel"]) else self.best
                self.save("last.pt", metrics)
                if improved:
                    self.save("best.pt", metrics)
                log.info(
                    "epoch %d/%d: loss %.4f, val AbsRel %.4f, δ1 %.3f, RMSE %.3f%s",
                    self.epoch, epochs, losses.get("loss", math.nan), metrics["abs_rel"], metrics["d1"],
                    metrics["rmse"], " (best)" if improved else "",
                )  # fmt: skip
            if self.distributed:
                dist.barrier()
        if self.distributed:
            self.check_replicas()
        if self.writer:
            self.writer.close()
        return metrics


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML config (config/train/*.yaml); defaults apply to missing keys")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    parser.add_argument("--resume", help="'auto' (OUTPUT/last.pt if there is one) or a checkpoint path")
    parser.add_argument("--overwrite", action="store_true", help="start over in an output folder holding a run")
    parser.add_argument("--allow-changed-config", action="store_true",
                        help="resume although settings differ from the checkpoint's (the new ones apply)")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    return run_command("train", __doc__, add_arguments, run, argv)


def run(args: argparse.Namespace) -> int:
    if args.resume and args.overwrite:
        raise UsageError("--resume continues a run and --overwrite replaces it: give one of the two")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    config = load_config(args.config, args.set)
    try:
        Trainer(config, args.resume, args.overwrite, args.allow_changed_config).fit()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
