"""segforge: scikit-learn-compatible clustering over segforge's engine (CPU or CUDA).

The estimators and metrics call the same drivers and Backend as the `segforge` CLI; models are
read and written in the CLI's model.h5 format."""

from ._segforge import __version__
from .cluster import DBSCAN, AgglomerativeClustering, KMeans, MiniBatchKMeans, load_model
from .metrics import (calinski_harabasz_score, davies_bouldin_score, silhouette_samples,
                      silhouette_score)
from .features import Features, read_features, write_features
from .segments import names, profiles, stability
from .select import sweep

__all__ = ["DBSCAN", "AgglomerativeClustering", "KMeans", "MiniBatchKMeans", "load_model", "silhouette_score", "silhouette_samples",
           "davies_bouldin_score", "calinski_harabasz_score", "sweep", "profiles", "names", "stability", "read_features",
           "write_features", "Features", "__version__"]
