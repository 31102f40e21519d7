"""Model cards as files: a built-in card by name, or a YAML file a user writes (docs/models.md).

A graph exported elsewhere carries no card of this project; ``card:=NAME|FILE`` (the node) or
``--card`` (the commands) gives it one. A card file holds :class:`~.card.ModelCard`'s fields, with
``input`` (the :class:`~.card.InputRule`) and ``graph`` (the :class:`~.graph_io.GraphIO`) as
mappings; it is read with the validation layer (bounded, safe YAML, unknown keys refused) and
checked against the graph when the graph is opened.
"""

from __future__ import annotations

from pathlib import Path

from depth_estimation_ros.core.card import ModelCard
from depth_estimation_ros.core.validation import load_yaml, mapping, shown

BUILTIN = Path(__file__).resolve().parents[1] / "data" / "cards"


def builtin_cards() -> dict[str, Path]:
    """Name → file of every card shipped with the package."""
    return {path.stem: path for path in sorted(BUILTIN.glob("*.yaml"))}


def load_card(spec: str) -> ModelCard:
    """The card ``spec`` names: a built-in card's name, or a YAML card file."""
    builtin = builtin_cards()
    path = builtin.get(spec) or Path(spec)
    if spec not in builtin and path.suffix.lower() not in (".yaml", ".yml"):
        raise ValueError(f"card {spec!r} is neither a built-in card ({', '.join(builtin) or 'none'}) "
                         "nor a .yaml card file")  # fmt: skip
    data = mapping(load_yaml(path, "model card"), f"model card {shown(path)}")
    data.setdefault("source", shown(path))  # what errors and logs name the card by
    card = ModelCard.from_dict(data, f"model card {shown(path)}")
    if not card.graph:
        raise ValueError(f"model card {shown(path)}: no graph section, which names the graph's tensors; see "
                         "docs/models.md")  # fmt: skip
    return card
