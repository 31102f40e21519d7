"""Offline side of the project: datasets, losses, the training loop, evaluation and export."""
