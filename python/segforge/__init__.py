"""segforge: scikit-learn-compatible clustering over segforge's engine (CPU or CUDA).

The estimators and metrics call the same drivers and Backend as the `segforge` CLI; models are
read and written in the CLI's model.h5 format."""

from ._segforge import __version__
from .cluster import KMeans, MiniBatchKMeans, load_model
from .metrics import (calinski_harabasz_score, davies_bouldin_score, silhouette_samples,
                      silhouette_score)
from .select import sweep

__all__ = ["KMeans", "MiniBatchKMeans", "load_model", "silhouette_score", "silhouette_samples",
           "davies_bouldin_score", "calinski_harabasz_score", "sweep", "__version__"]
