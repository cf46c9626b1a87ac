"""Versioned model weights: artifacts with a checksum, a registry, training."""

from engine.models.artifact import ModelArtifactError, ModelWeights, blend, default_weights

__all__ = ["ModelArtifactError", "ModelWeights", "blend", "default_weights"]
