"""Versioned model weights: artifacts with a checksum, loaded for the inference kernel."""

from engine.models.artifact import ModelArtifactError, ModelWeights, default_weights

__all__ = ["ModelArtifactError", "ModelWeights", "default_weights"]
