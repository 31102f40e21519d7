"""Pretrained depth models from transformers folders (``save_pretrained``), behind the project's road.

A folder with ``config.json`` and ``preprocessor_config.json`` of a transformers depth model, or a
Hub id already in the local Hugging Face cache, loads with ``local_files_only``: nothing is ever
downloaded. :func:`card_from_folder` reads what the folder states into a :class:`ModelCard`
(output kind, input rule, normalisation, depth range, licence), and :class:`TransformersDepth`
wraps the network in the project's contract: RGB in [0, 1], normalised inside, raw output as
``depth`` (B, 1, H, W) at the input size. What the output *means* (metres, relative or canonical
inverse depth) is the card's, and the estimator turns it into metres.

Families (``model_type``) and what their outputs are, from the models' own code:

* ``depth_anything`` / ``prompt_depth_anything``: metric heads ``sigmoid × max_depth`` metres;
  relative heads affine-invariant inverse depth. Input: 518 box, keep aspect, multiple of 14, bicubic.
* ``dpt`` (DPT, MiDaS 3): relative inverse depth; 384×384, bicubic, mean/std 0.5.
* ``glpn``: metres (``sigmoid × max_depth``); the frame's size floored to a multiple of 32, no
  normalisation.
* ``zoedepth``: metres; reflect padding of ``int(3·sqrt(side/2))`` pixels, then a 384×512 box
  (keep aspect, multiple of 32), bilinear.
* ``depth_pro``: canonical inverse depth c, ``Z = f / (W · c)`` with the camera's focal length f
  at the input width W; 1536×1536.

* ``prompt_depth_anything``: with ``scale_source: sparse_depth``, metres: the frame's sparse depth
  is its prompt (:func:`~depth_estimation_ros.core.prompt.depth_prompt`), which the model normalises
  by its min and max and maps its output back with (transformers'
  PromptDepthAnythingForDepthEstimation); a frame without one is skipped. Otherwise it runs without
  a prompt, as the relative model its card says, anchored like the others.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from depth_estimation_ros.core import validation as v
from depth_estimation_ros.core.card import MAX_NETWORK_PIXELS, InputRule, ModelCard
from depth_estimation_ros.core.errors import quiet_loggers
from depth_estimation_ros.core.files import is_hub_id

FAMILIES = ("depth_anything", "prompt_depth_anything", "dpt", "glpn", "zoedepth", "depth_pro")
RESAMPLE = {0: "nearest", 1: "area", 2: "bilinear", 3: "bicubic", 4: "area", 5: "bicubic"}  # PIL codes
CONFIG_LIMIT = 1 << 20  # bytes: configs are small; a bigger "config" is not one


def _read_json(path: Path) -> dict:
    # Bounded, duplicate keys and NaN refused, the path named (validation.read_json).
    return v.read_json(path, "model config", CONFIG_LIMIT)


def is_transformers_folder(path: str | os.PathLike) -> bool:
    return Path(path).is_dir() and (Path(path) / "config.json").is_file()


def resolve(model: str | os.PathLike) -> Path:
    """A transformers model folder for ``model``: a folder, or a Hub id in the local cache.

    Never downloads; the error says how to bring a folder to a machine without internet.
    """
    path = Path(model)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ValueError(f"{path} is a folder without config.json: not a transformers model folder")
        return path
    text = str(model)
    if is_hub_id(text) and not path.exists():
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(text, "config.json")
        except Exception:  # no hub library, or a malformed id
            cached = None
        if isinstance(cached, str):
            return Path(cached).parent
        raise FileNotFoundError(
            f"model {text!r} is not a file, a folder or a Hub id in the local Hugging Face cache, and nothing "
            'is downloaded here. On a machine with internet: python -c "from transformers import '
            f"AutoModelForDepthEstimation as M, AutoImageProcessor as P; M.from_pretrained('{text}')"
            f".save_pretrained('model'); P.from_pretrained('{text}').save_pretrained('model')\", then copy the "
            "folder 'model' to this machine and pass its path"
        )
    raise FileNotFoundError(f"model file not found: {path}")


FRONT_MATTER_LINES = 200  # a Hub model card's YAML header is a few dozen lines


def _licence(folder: Path) -> str:
    """The licence a folder's README (Hub model card) states in its YAML front matter, if any.

    One pass over at most the first :data:`FRONT_MATTER_LINES` lines (a header opened by ``---``
    and never closed costs no more than one that closes)."""
    readme = folder / "README.md"
    if not readme.is_file() or readme.stat().st_size > CONFIG_LIMIT:
        return ""
    with readme.open(encoding="utf-8", errors="replace") as text:
        lines = [line.strip() for line in itertools.islice(text, FRONT_MATTER_LINES)]
    if not lines or lines[0] != "---":
        return ""
    for line in lines[1:]:
        if line == "---":
            break
        key, _, value = line.partition(":")
        if key in ("license", "licence") and value.strip():
            return value.split()[0].strip("'\"")
    return ""


MAX_NETWORK_SIDE = 8192  # px: beyond any published depth model's input
GLPN_MAX_PIXELS = 1 << 20
DEFAULT_SIZES = {"depth_anything": (518, 518), "prompt_depth_anything": (518, 518), "dpt": (384, 384),
                 "zoedepth": (384, 512), "depth_pro": (1536, 1536), "glpn": (480, 640)}  # fmt: skip


def _field(where: str, name: str) -> str:
    return f"{where}: {name}"


def _channels(value, where: str, low: float, high: float) -> list[float]:
    """A per-channel statistic: one number for all three channels, or three."""
    values = [value] * 3 if isinstance(value, int | float) and not isinstance(value, bool) else value
    return [v.number(x, where, low=low, high=high) for x in v.numbers(values, where, count=3)]


def _size(value, where: str, default: tuple[int, int]) -> tuple[int, int]:
    side = {"low": 1, "high": MAX_NETWORK_SIDE}
    if value is None:
        return default
    if isinstance(value, int) and not isinstance(value, bool):
        return (v.integer(value, where, **side),) * 2
    if isinstance(value, dict) and "height" in value and "width" in value:
        height, width = (v.integer(value[k], f"{where}.{k}", **side) for k in ("height", "width"))
        return height, width
    if isinstance(value, dict) and "shortest_edge" in value:
        return (v.integer(value["shortest_edge"], f"{where}.shortest_edge", **side),) * 2
    v.fail(where, "an integer or a mapping with height and width (or shortest_edge)", value)


def _normalization(processor: dict, where: str, family: str) -> dict:
    """The network's input normalisation for RGB in [0, 1]: transformers computes
    ``(x·255·rescale_factor − mean) / std`` on 8-bit x, i.e. ``(x − mean/k) / (std/k)`` with
    ``k = 255·rescale_factor`` (1 for the usual 1/255), so any rescale folds into mean and std."""
    rescale = v.boolean(processor.get("do_rescale", True), _field(where, "do_rescale"))
    factor = processor.get("rescale_factor", 1 / 255) if rescale else 1.0
    k = 255 * v.number(factor, _field(where, "rescale_factor"), low=1e-6, high=1.0)
    if not v.boolean(processor.get("do_normalize", family != "glpn"), _field(where, "do_normalize")):
        return {} if abs(k - 1) < 1e-6 else {"mean": [0.0] * 3, "std": [1 / k] * 3}
    mean = _channels(processor.get("image_mean", 0.5), _field(where, "image_mean"), -1e3, 1e3)
    # a std of 0 divides by zero (all-NaN depth); below 1e-3 it amplifies the image a thousandfold
    std = _channels(processor.get("image_std", 0.5), _field(where, "image_std"), 1e-3, 1e3)
    return {"mean": [m / k for m in mean], "std": [s / k for s in std]}


def _input_rule(processor: dict, where: str, family: str) -> InputRule:
    multiple_key = "ensure_multiple_of" if "ensure_multiple_of" in processor else "size_divisor"
    multiple = v.integer(processor.get(multiple_key, 1), _field(where, multiple_key), low=1, high=1024)
    height, width = _size(processor.get("size"), _field(where, "size"), DEFAULT_SIZES[family])
    keep_aspect = v.boolean(processor.get("keep_aspect_ratio", False), _field(where, "keep_aspect_ratio"))
    resample = processor.get("resample", 2)
    if isinstance(resample, bool) or resample not in RESAMPLE:
        v.fail(_field(where, "resample"), f"a PIL resampling code, one of {sorted(RESAMPLE)}", resample)
    do_pad = v.boolean(processor.get("do_pad", family == "zoedepth"), _field(where, "do_pad"))
    return InputRule(
        height=height,
        width=width,
        # a plain resize to one size is a fixed network input; the others follow the frame
        fixed=not keep_aspect and family != "glpn",
        keep_aspect=keep_aspect,
        multiple=multiple,
        interpolation=RESAMPLE[resample],
        pad="reflect_sqrt" if family == "zoedepth" and do_pad else "none",
        box=family != "glpn",
        align_corners=family == "zoedepth",
        # GLPN runs at the frame's own size; its first attention stage holds (pixels/16)²/64 scores, so
        # 1 MP already costs a quarter GB a head, and 24 MP tens of GB: larger frames are scaled down
        max_pixels=GLPN_MAX_PIXELS if family == "glpn" else MAX_NETWORK_PIXELS,
    )


def _depth_range(config: dict, where: str, family: str) -> tuple[str, tuple[float, float]]:
    """(output kind, depth range in metres) from config.json."""
    kind = config.get("depth_estimation_type", "relative")
    if family in ("depth_anything", "prompt_depth_anything") and kind not in ("relative", "metric"):
        v.fail(_field(where, "depth_estimation_type"), "'relative' or 'metric'", kind)
    if (family in ("depth_anything", "prompt_depth_anything") and kind == "metric") or family == "glpn":
        # the metric heads output sigmoid × max_depth: 0 would be 0 m everywhere, marked valid
        max_depth = config.get("max_depth", 10.0)
        return "metric_depth", (0.01, v.number(max_depth, _field(where, "max_depth"), above=0.01, high=1e4))
    if family in ("depth_anything", "prompt_depth_anything", "dpt"):
        return "relative_inverse_depth", (0.01, 1000.0)
    if family == "depth_pro":
        return "canonical_inverse_depth", (0.01, 1000.0)
    bins = config.get("bin_configurations") or [{}]  # zoedepth: one range per domain head
    if not isinstance(bins, list) or not bins or not all(isinstance(b, dict) for b in bins):
        v.fail(_field(where, "bin_configurations"), "a list of mappings with min_depth and max_depth", bins)
    ranges = []
    for i, b in enumerate(bins):
        at = _field(where, f"bin_configurations[{i}]")
        low = v.number(b.get("min_depth", 1e-3), f"{at}.min_depth", above=0, high=1e4)
        ranges.append((low, v.number(b.get("max_depth", 10.0), f"{at}.max_depth", above=low, high=1e4)))
    return "metric_depth", (min(low for low, _ in ranges), max(high for _, high in ranges))


def card_from_folder(folder: str | os.PathLike) -> ModelCard:
    """The model card of a transformers depth folder, from its config and preprocessor config, each
    field checked (validation layer: the file and the field named)."""
    folder = Path(folder)
    config_file, processor_file = folder / "config.json", folder / "preprocessor_config.json"
    config = _read_json(config_file)
    family = config.get("model_type", "")
    if family not in FAMILIES:
        raise ValueError(
            f"{folder}: model_type {family!r} is not a supported depth model; expected one of {list(FAMILIES)}"
        )
    if not processor_file.is_file():  # transformers' own pipeline refuses such a folder too
        raise ValueError(
            f"{v.shown(folder)}: no preprocessor_config.json, which says how images are resized and normalised for "
            "this model; save the processor beside the model: AutoImageProcessor.from_pretrained(ID)"
            ".save_pretrained(FOLDER)"
        )
    processor = _read_json(processor_file)
    where, config_where = v.shown(processor_file), v.shown(config_file)
    output, (low, high) = _depth_range(config, config_where, family)
    return ModelCard(
        output=output,
        input=_input_rule(processor, where, family),
        min_depth=low,
        max_depth=high,
        focal_rule="inverse_focal" if output == "canonical_inverse_depth" else "none",
        normalization=_normalization(processor, where, family),
        prompt="depth" if family == "prompt_depth_anything" else "",
        family=family,
        licence=_licence(folder),
        source=str(config.get("_name_or_path") or folder.name),
    )


class TransformersDepth(nn.Module):
    """A transformers depth model in the project's contract: RGB in [0, 1] → ``depth`` (B, 1, H, W).

    The output is the model's own (see the card), up-sampled bilinearly to the input size where the
    model predicts at another (ZoeDepth). Normalisation is inside, as in every graph here.
    """

    size_divisor = 1

    def __init__(self, model: nn.Module, card: ModelCard):
        super().__init__()
        self.model, self.card_ = model.eval(), card
        norm = card.normalization or {"mean": [0.0] * 3, "std": [1.0] * 3}
        self.register_buffer("mean", torch.tensor(norm["mean"], dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(norm["std"], dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.min_depth, self.max_depth = card.min_depth, card.max_depth
        self.has_confidence = False
        self.config = {"name": card.family, "source": card.source}
        self.focal_length = None

    @property
    def normalization(self) -> dict:
        return dict(self.card_.normalization)

    def card(self, input_size: tuple[int, int] | None = None) -> ModelCard:
        if input_size is None:
            return self.card_
        # frozen for an exported graph, which runs at one size and has no prompt input
        return replace(self.card_, input=self.card_.input.at(int(input_size[0]), int(input_size[1])), prompt="")

    def check_input(self, image: torch.Tensor) -> None:
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(f"expected an RGB batch of shape (B, 3, H, W), got {tuple(image.shape)}")

    def forward(self, image: torch.Tensor, prompt: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``prompt``: (B, 1, h, w) metric depth for a model that takes one (any resolution, no holes)."""
        self.check_input(image)
        pixels = (image - self.mean) / self.std
        extra = {"prompt_depth": prompt} if prompt is not None else {}
        depth = self.model(pixel_values=pixels, **extra).predicted_depth
        depth = depth.unsqueeze(1) if depth.dim() == 3 else depth
        if depth.shape[-2:] != image.shape[-2:]:
            depth = F.interpolate(depth, size=image.shape[-2:], mode="bilinear", align_corners=False)
        return {"depth": depth}


def check_weights_fit(folder: Path, model_tensors: dict, loading: dict, family: str) -> None:
    """Refuse a folder whose weights do not fit the model its config.json builds (a partial or empty
    download, another family's or another size's weights): what is missing would be random."""
    missing, unexpected = sorted(loading.get("missing_keys") or []), sorted(loading.get("unexpected_keys") or [])
    mismatched = list(loading.get("mismatched_keys") or [])
    if not (missing or unexpected or mismatched):
        return
    total = len(model_tensors)
    parts = []
    if missing:
        parts.append(f"{len(missing)} of the model's {total} tensors are missing (e.g. {missing[0]})")
    if unexpected:
        parts.append(f"{len(unexpected)} tensors in it are not the model's (e.g. {unexpected[0]})")
    if mismatched:
        parts.append(f"{len(mismatched)} have another shape (e.g. {mismatched[0][0]})")
    found = {key.split(".")[0] for key in set(model_tensors) - set(missing)} | {k.split(".")[0] for k in unexpected}
    wanted = {key.split(".")[0] for key in model_tensors}
    if len(missing) == total:  # nothing fits: weights of another family
        parts.append(f"the weights' structure ({', '.join(sorted(found)) or 'no tensors'}) is not the "
                     f"{family} model's its config.json describes ({', '.join(sorted(wanted))})")  # fmt: skip
    raise ValueError(f"{folder}: the weights do not fit the {family} model of its config.json: "
                     f"{'; '.join(parts)}; a partial download or another model's weights? (refused: missing "
                     "ones would be random)")  # fmt: skip


def load_transformers_model(model: str | os.PathLike, map_location: str | torch.device = "cpu") -> TransformersDepth:
    """Load a transformers depth folder (or cached Hub id) offline, wrapped with its card."""
    folder = resolve(model)
    card = card_from_folder(folder)
    try:
        from transformers import AutoModelForDepthEstimation
    except ImportError:
        raise ValueError(
            f"{folder} is a transformers model folder, but transformers is not installed: pip install transformers"
        ) from None
    try:
        # float32 whatever the folder was saved in (float16, bfloat16 folders are cast: the CPU and
        # every backend here run float32 graphs); transformers' own report of what did not load is
        # silenced and judged below instead
        with quiet_loggers("transformers"):
            network, loading = AutoModelForDepthEstimation.from_pretrained(
                str(folder),
                local_files_only=True,
                dtype=torch.float32,
                output_loading_info=True,
                ignore_mismatched_sizes=True,  # reported in the loading info and refused below, with counts
            )
    except Exception as exc:
        raise ValueError(f"{folder}: transformers cannot load the model: {exc}") from None
    check_weights_fit(folder, network.state_dict(), loading, card.family)
    for name, tensor in network.state_dict().items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ValueError(f"{folder}: weight {name} holds non-finite values (NaN or inf)")
    return TransformersDepth(network, card).to(map_location).eval()
