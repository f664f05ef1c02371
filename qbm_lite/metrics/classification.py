"""Cell-type classification on embeddings, with splits that say how much the test cells leaked.

A classifier trained on an embedding and scored on held-out cells measures how much cell-type
information the embedding keeps, and how well that information *transfers* (label transfer,
atlas annotation). How the held-out cells are chosen decides what is measured:

``"random"``
    Stratified k-fold over cells (scikit-learn's ``StratifiedKFold``). The QBM-VAE paper's
    protocol (arXiv 2508.11190, its public code). *Optimistic*: the test cells come from the
    same batches as the training cells, and the embedding model saw them all during training.
``"holdout-batch"``
    Leave one batch out: train the classifier on the other batches, test on the held-out one
    (OpenProblems' label projection task, Luecken et al., 2025). The embedding model still saw
    the held-out batch while it was trained (transductive).
``"holdout-batch-retrain"``
    The strict version: for each held-out batch the *embedding model* is retrained on the other
    batches and the held-out cells are mapped into its latent space afterwards (reference
    mapping, as scArches / scvi-tools' query mapping do; Lotfollahi et al., 2022). The caller
    passes, per method, an :data:`Embedder`: a callable ``(reference, query, seed) ->
    (Z_reference, Z_query)``. This module never sees a model; see :mod:`qbm_lite.mapping` for
    the embedders of the package's methods.

Cell types of a held-out batch that no training cell has cannot be predicted right; they stay
in the test set (counted as errors) and are listed in :attr:`ClassificationBenchmark.unseen`.

Classifiers (:data:`CLASSIFIERS`): XGBoost with the paper's settings (100 trees, depth 6,
learning rate 0.1, ``tree_method="hist"``, on CUDA when present; Chen & Guestrin, 2016), and two
cheap references from scikit-learn: logistic regression on standardized features and a
15-nearest-neighbour vote on the raw embedding (distances in an embedding are meaningful, so it
is not rescaled).

Scores come from one confusion matrix per fold (rows: true type, columns: predicted type).
Macro averages are over the cell types present in the fold's test cells (a type absent from
the test cells has no recall to average); precision of a type that is never predicted is 0
(scikit-learn's ``zero_division=0``). They agree with scikit-learn's
``precision_recall_fscore_support`` (with ``labels`` = the types in ``y_true`` and
``zero_division=0``), ``accuracy_score`` and ``balanced_accuracy_score`` (checked in the tests).

The array-level functions (:func:`random_splits`, :func:`holdout_batch_splits`,
:func:`confusion_counts`, :func:`scores_from_confusion`, :func:`cross_validate`) take numpy
arrays; only :func:`classification_benchmark` reads an AnnData.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from qbm_lite.checks import InputError, check_choice, drop_missing, obs_column, obsm_array
from qbm_lite.metrics.stats import PairedComparison, compare, summarize

__all__ = [
    "CLASSIFIERS",
    "CLASSIFICATION_METRICS",
    "SCHEMES",
    "ClassificationBenchmark",
    "Embedder",
    "classification_benchmark",
    "confusion_counts",
    "cross_validate",
    "holdout_batch_splits",
    "make_classifier",
    "per_class_scores",
    "random_splits",
    "scores_from_confusion",
]

Scheme = Literal["random", "holdout-batch", "holdout-batch-retrain"]
ClassifierName = Literal["xgboost", "logistic", "knn"]
SCHEMES: tuple[str, ...] = ("random", "holdout-batch", "holdout-batch-retrain")
CLASSIFIERS: tuple[str, ...] = ("xgboost", "logistic", "knn")
#: Metrics in :attr:`ClassificationBenchmark.scores`, in this order.
CLASSIFICATION_METRICS: tuple[str, ...] = (
    "accuracy",
    "balanced_accuracy",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "precision_weighted",
    "recall_weighted",
    "f1_weighted",
)

#: ``embedder(reference, query, seed) -> (Z_reference, Z_query)``: train an embedding model on
#: the reference AnnData only and return its embedding of both (``(n_ref, d)``, ``(n_query, d)``).
Embedder = Callable[[Any, Any, int], tuple[np.ndarray, np.ndarray]]

#: A split: (name, train indices, test indices).
Split = tuple[str, np.ndarray, np.ndarray]


# --- splits ---------------------------------------------------------------------------------
def random_splits(labels: np.ndarray, n_splits: int = 5, seed: int = 0) -> list[Split]:
    """Stratified k-fold over cells (the paper's protocol).

    Parameters
    ----------
    labels
        ``(n_cells,)`` cell-type labels.
    n_splits
        Number of folds; every cell type needs at least this many cells.
    seed
        Shuffling seed.

    Returns
    -------
    list of (str, numpy.ndarray, numpy.ndarray)
        ``("fold0", train_idx, test_idx), ...``; each cell is in exactly one test fold.

    Raises
    ------
    qbm_lite.checks.InputError
        ``n_splits < 2`` or a cell type with fewer than ``n_splits`` cells.
    """
    from sklearn.model_selection import StratifiedKFold

    labels = np.asarray(labels)
    if int(n_splits) < 2:
        raise InputError(f"n_splits must be at least 2; got {n_splits}.")
    names, counts = np.unique(labels, return_counts=True)
    small = [f"{n} ({c})" for n, c in zip(names, counts, strict=True) if c < n_splits]
    if small:
        raise InputError(
            f"stratified {n_splits}-fold splits need >= {n_splits} cells per type; too few: "
            f"{small}. Lower n_splits, or drop or merge the rare types first."
        )
    kfold = StratifiedKFold(n_splits=int(n_splits), shuffle=True, random_state=int(seed))
    dummy = np.zeros(labels.size)
    return [
        (f"fold{i}", tr, te) for i, (tr, te) in enumerate(kfold.split(dummy, labels.astype(str)))
    ]


def holdout_batch_splits(batches: np.ndarray) -> list[Split]:
    """Leave one batch out: one split per batch, named after the held-out batch.

    Raises
    ------
    qbm_lite.checks.InputError
        Fewer than two batches (nothing to train on).
    """
    batches = np.asarray(batches).astype(str)
    names = list(pd.unique(batches))
    if len(names) < 2:
        raise InputError(
            f"scheme='holdout-batch' needs at least 2 batches; the batch column has "
            f"{len(names)} ({names}). Use scheme='random', or pass a batch_key with several "
            "batches (donors, technologies)."
        )
    idx = np.arange(batches.size)
    return [(name, idx[batches != name], idx[batches == name]) for name in sorted(names)]


# --- classifiers ----------------------------------------------------------------------------
def _cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:  # pragma: no cover - torch is a dependency
        return False


class _XGBoost:
    """XGBoost with the paper's settings; labels are encoded to 0..K-1 for it."""

    def __init__(self, seed: int, device: str) -> None:
        from xgboost import XGBClassifier

        self.device = device
        self.model = XGBClassifier(
            n_estimators=100,
            max_depth=6,
            learning_rate=0.1,
            tree_method="hist",
            device=device,
            random_state=int(seed),
        )

    def fit(self, X: np.ndarray, y: np.ndarray) -> _XGBoost:
        self.classes_, codes = np.unique(y, return_inverse=True)
        self.model.fit(X, codes)
        if self.device != "cpu":
            # Predict from host memory without XGBoost's device-mismatch fallback warning.
            self.model.set_params(device="cpu")
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.classes_[np.asarray(self.model.predict(X), dtype=np.int64)]


def make_classifier(name: ClassifierName, seed: int = 0, n_train: int | None = None):
    """A fresh, unfitted classifier with ``fit(X, y)`` and ``predict(X)``.

    Parameters
    ----------
    name
        ``"xgboost"``: ``xgboost.XGBClassifier(n_estimators=100, max_depth=6,
        learning_rate=0.1, tree_method="hist", device="cuda" if available else "cpu")``, the
        QBM-VAE paper's settings; ``"logistic"``: scikit-learn's ``LogisticRegression``
        (L2, ``max_iter=2000``) after ``StandardScaler``; ``"knn"``: ``KNeighborsClassifier``
        with 15 neighbours (fewer if there are fewer training cells), Euclidean, unscaled.
    seed
        Random state (XGBoost; the others are deterministic).
    n_train
        Number of training cells (caps kNN's neighbours).
    """
    check_choice("classifier", name, ClassifierName)
    if name == "xgboost":
        return _XGBoost(seed, "cuda" if _cuda_available() else "cpu")
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if name == "logistic":
        from sklearn.linear_model import LogisticRegression

        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    from sklearn.neighbors import KNeighborsClassifier

    k = 15 if n_train is None else max(1, min(15, int(n_train)))
    return KNeighborsClassifier(n_neighbors=k)


# --- scores ---------------------------------------------------------------------------------
def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence) -> np.ndarray:
    """``(K, K)`` counts: entry ``[i, j]`` is the number of cells of ``labels[i]`` predicted as
    ``labels[j]`` (scikit-learn's ``confusion_matrix`` convention).

    Raises
    ------
    qbm_lite.checks.InputError
        A true or predicted label that is not in ``labels``, or arrays of different lengths.
    """
    labels = np.asarray(labels).astype(str)
    y_true = np.asarray(y_true).astype(str)
    y_pred = np.asarray(y_pred).astype(str)
    if y_true.shape != y_pred.shape:
        raise InputError(f"y_true and y_pred differ in length: {y_true.size} vs {y_pred.size}.")
    lookup = {name: i for i, name in enumerate(labels)}
    unknown = sorted((set(y_true) | set(y_pred)) - set(lookup))
    if unknown:
        raise InputError(f"labels {unknown[:5]} are not in the label list {list(labels)[:10]}.")
    t = np.fromiter((lookup[v] for v in y_true), dtype=np.int64, count=y_true.size)
    p = np.fromiter((lookup[v] for v in y_pred), dtype=np.int64, count=y_pred.size)
    counts = np.zeros((labels.size, labels.size), dtype=np.int64)
    np.add.at(counts, (t, p), 1)
    return counts


def _safe_divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.divide(a, b, out=np.zeros_like(a, dtype=np.float64), where=b > 0)


def per_class_scores(counts: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class ``precision``, ``recall``, ``f1`` and ``support`` from a confusion matrix.

    ``0/0`` is 0 (scikit-learn's ``zero_division=0``). Each array has shape ``(K,)``.
    """
    counts = np.asarray(counts, dtype=np.float64)
    tp = np.diag(counts)
    support = counts.sum(axis=1)
    predicted = counts.sum(axis=0)
    precision = _safe_divide(tp, predicted)
    recall = _safe_divide(tp, support)
    f1 = _safe_divide(2 * precision * recall, precision + recall)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support}


def scores_from_confusion(counts: np.ndarray) -> dict[str, float]:
    """The :data:`CLASSIFICATION_METRICS` from one ``(K, K)`` confusion matrix.

    Macro means run over the classes with support (true cells) > 0; weighted means weight each
    class by its support; balanced accuracy is the macro recall (Brodersen et al., 2010).

    Raises
    ------
    qbm_lite.checks.InputError
        An empty matrix (no test cells).
    """
    counts = np.asarray(counts, dtype=np.float64)
    n = counts.sum()
    if n <= 0:
        raise InputError("the confusion matrix is empty: there are no test cells to score.")
    pc = per_class_scores(counts)
    present = pc["support"] > 0
    w = pc["support"][present] / n
    out = {"accuracy": float(np.trace(counts) / n)}
    out["balanced_accuracy"] = float(pc["recall"][present].mean())
    for name in ("precision", "recall", "f1"):
        out[f"{name}_macro"] = float(pc[name][present].mean())
    for name in ("precision", "recall", "f1"):
        out[f"{name}_weighted"] = float((pc[name][present] * w).sum())
    return {m: out[m] for m in CLASSIFICATION_METRICS}


# --- cross-validation -----------------------------------------------------------------------
ClassifierFactory = Callable[[int, int], Any]


def _factory(classifier: ClassifierName | ClassifierFactory) -> ClassifierFactory:
    if callable(classifier):
        return classifier
    check_choice("classifier", classifier, ClassifierName)
    return lambda seed, n_train: make_classifier(classifier, seed=seed, n_train=n_train)


def _check_split(name: str, train: np.ndarray, test: np.ndarray, n: int) -> None:
    if train.size == 0 or test.size == 0:
        raise InputError(f"split {name!r} has {train.size} training and {test.size} test cells.")
    if np.intersect1d(train, test).size:
        raise InputError(f"split {name!r} has cells in both its training and its test set.")
    if train.max() >= n or test.max() >= n or min(train.min(), test.min()) < 0:
        raise InputError(f"split {name!r} has indices outside 0..{n - 1}.")


def cross_validate(
    X: np.ndarray | Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
    y: np.ndarray,
    splits: Sequence[Split],
    classifier: ClassifierName | ClassifierFactory = "xgboost",
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Fit on each split's training cells, predict its test cells.

    Parameters
    ----------
    X
        ``(n_cells, d)`` embedding, or a callable ``(train_idx, test_idx) -> (X_train,
        X_test)`` that makes the embedding per split (the retrain-and-map scheme).
    y
        ``(n_cells,)`` labels (strings).
    splits
        ``(name, train_idx, test_idx)`` triples (:func:`random_splits`,
        :func:`holdout_batch_splits`); training and test sets must be disjoint.
    classifier
        A name from :data:`CLASSIFIERS`, or a factory ``(seed, n_train) -> estimator`` with
        ``fit`` / ``predict``.
    seed
        Classifier seed.

    Returns
    -------
    list of dict
        Per split: ``fold``, ``test_idx``, ``y_true``, ``y_pred``, ``train_labels`` (the
        types seen in training).
    """
    y = np.asarray(y).astype(str)
    make = _factory(classifier)
    out = []
    for name, train, test in splits:
        train, test = np.asarray(train), np.asarray(test)
        _check_split(name, train, test, y.size)
        if callable(X):
            X_train, X_test = X(train, test)
        else:
            X_train, X_test = X[train], X[test]
        seen = np.unique(y[train])
        if seen.size < 2:
            raise InputError(
                f"split {name!r}: the training cells hold one cell type ({seen.tolist()}); a "
                "classifier needs at least two."
            )
        model = make(int(seed), int(train.size)).fit(X_train, y[train])
        y_pred = np.asarray(model.predict(X_test)).astype(str)
        out.append(
            {
                "fold": name,
                "test_idx": test,
                "y_true": y[test],
                "y_pred": y_pred,
                "train_labels": seen,
            }
        )
    return out


# --- results --------------------------------------------------------------------------------
@dataclass
class ClassificationBenchmark:
    """Results of :func:`classification_benchmark`.

    Attributes
    ----------
    scores
        Tidy per-fold table: ``method``, ``fold`` (fold name, or the held-out batch), ``seed``,
        ``scheme``, ``classifier``, ``metric`` (one of :data:`CLASSIFICATION_METRICS`),
        ``value``. Pass it to :func:`qbm_lite.metrics.compare`.
    per_class
        Per method, fold and cell type: ``precision``, ``recall``, ``f1``, ``support``.
    confusion
        ``{method: DataFrame}``: row-normalized confusion matrix pooled over folds (rows: true
        type, columns: predicted type; each row sums to 1, or 0 for a type with no test cells).
    counts
        ``{method: DataFrame}``: the pooled confusion counts behind :attr:`confusion`.
    pairs
        For each declared close pair ``(A, B)`` and method: ``a_as_b`` (share of A's test
        cells predicted as B), ``b_as_a``, their mean ``confusion``, and ``n_a``, ``n_b``.
    unseen
        Test cells whose type no training cell had (holdout schemes): ``method``, ``fold``,
        ``cell_type``, ``n_cells``. Counted as errors, never dropped.
    figure
        :func:`qbm_lite.plotting.classification.plot_classification` of the results, or
        ``None`` when ``plot=False``.
    """

    scores: pd.DataFrame
    per_class: pd.DataFrame
    confusion: dict[str, pd.DataFrame]
    counts: dict[str, pd.DataFrame]
    pairs: pd.DataFrame
    unseen: pd.DataFrame
    scheme: str
    classifier: str
    figure: object | None = field(default=None, repr=False)

    def summary(self, metrics: Sequence[str] = ("f1_macro", "balanced_accuracy")) -> pd.DataFrame:
        """Mean ± sd over folds: one row per method, ``<metric>`` and ``<metric>_sd`` columns."""
        rows = self.scores[self.scores["metric"].isin(list(metrics))]
        s = summarize(rows).reset_index()
        mean = s.pivot(index="method", columns="metric", values="mean")
        sd = s.pivot(index="method", columns="metric", values="sd").add_suffix("_sd")
        cols = [c for m in metrics for c in (m, f"{m}_sd")]
        order = list(pd.unique(self.scores["method"]))
        return pd.concat([mean, sd], axis=1)[cols].loc[order]

    def compare(self, a: str, b: str, metric: str = "f1_macro", **kwargs) -> PairedComparison:
        """Paired ``a − b`` over the folds (:func:`qbm_lite.metrics.compare`)."""
        return compare(self.scores, a, b, metric, **kwargs)


def _tidy_scores(method: str, fold: str, scores: dict[str, float], meta: dict) -> list[dict]:
    return [
        {"method": method, "fold": fold, **meta, "metric": m, "value": v} for m, v in scores.items()
    ]


def _method_results(
    method: str, folds: list[dict[str, Any]], labels: np.ndarray, meta: dict
) -> tuple[list[dict], list[dict], np.ndarray, list[dict]]:
    score_rows, class_rows, unseen_rows = [], [], []
    pooled = np.zeros((labels.size, labels.size), dtype=np.int64)
    for f in folds:
        counts = confusion_counts(f["y_true"], f["y_pred"], labels)
        pooled += counts
        score_rows += _tidy_scores(method, f["fold"], scores_from_confusion(counts), meta)
        pc = per_class_scores(counts)
        for i, name in enumerate(labels):
            if pc["support"][i] > 0:
                class_rows.append(
                    {
                        "method": method,
                        "fold": f["fold"],
                        "cell_type": name,
                        **{k: float(pc[k][i]) for k in ("precision", "recall", "f1")},
                        "support": int(pc["support"][i]),
                    }
                )
        missing = sorted(set(f["y_true"]) - set(f["train_labels"]))
        for name in missing:
            n = int((f["y_true"] == name).sum())
            unseen_rows.append(
                {"method": method, "fold": f["fold"], "cell_type": name, "n_cells": n}
            )
    return score_rows, class_rows, pooled, unseen_rows


def _pair_rows(method: str, pooled: np.ndarray, labels: np.ndarray, pairs) -> list[dict]:
    index = {name: i for i, name in enumerate(labels)}
    rows = []
    for a, b in pairs:
        i, j = index[a], index[b]
        n_a, n_b = int(pooled[i].sum()), int(pooled[j].sum())
        a_as_b = pooled[i, j] / n_a if n_a else np.nan
        b_as_a = pooled[j, i] / n_b if n_b else np.nan
        rows.append(
            {
                "method": method,
                "a": a,
                "b": b,
                "a_as_b": float(a_as_b),
                "b_as_a": float(b_as_a),
                "confusion": float(np.nanmean([a_as_b, b_as_a])),
                "n_a": n_a,
                "n_b": n_b,
            }
        )
    return rows


def _check_pairs(close_pairs, labels: np.ndarray) -> list[tuple[str, str]]:
    if close_pairs is None:
        return []
    out = []
    known = set(labels)
    for pair in close_pairs:
        if len(pair) != 2:
            raise InputError(f"close_pairs must hold (A, B) pairs of cell types; got {pair!r}.")
        a, b = str(pair[0]), str(pair[1])
        bad = [x for x in (a, b) if x not in known]
        if bad:
            raise InputError(
                f"close pair {pair!r}: {bad} not among the labels ({sorted(known)[:12]})."
            )
        out.append((a, b))
    return out


def _methods(obsm_keys, embedders, scheme: str) -> dict[str, Any]:
    if scheme == "holdout-batch-retrain":
        if not embedders:
            raise InputError(
                "scheme='holdout-batch-retrain' retrains each embedding model without the "
                "held-out batch: pass embedders={name: embedder} (see qbm_lite.mapping)."
            )
        if obsm_keys:
            raise InputError(
                "scheme='holdout-batch-retrain' embeds the cells itself; pass embedders, not "
                "obsm_keys (precomputed embeddings saw the held-out batch)."
            )
        bad = [n for n, e in embedders.items() if not callable(e)]
        if bad:
            raise InputError(f"embedders {bad} are not callable.")
        return dict(embedders)
    if embedders:
        raise InputError(
            f"embedders are used by scheme='holdout-batch-retrain' only; got scheme={scheme!r}."
        )
    if not obsm_keys:
        raise InputError("pass obsm_keys: the embeddings (adata.obsm keys) to classify on.")
    if isinstance(obsm_keys, str):
        obsm_keys = [obsm_keys]
    return dict(obsm_keys) if isinstance(obsm_keys, Mapping) else {k: k for k in obsm_keys}


def _embed_per_split(adata, embedder: Embedder, name: str, seed: int):
    def embed(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        reference, query = adata[train].copy(), adata[test].copy()
        Z_ref, Z_query = embedder(reference, query, int(seed))
        Z_ref, Z_query = np.asarray(Z_ref), np.asarray(Z_query)
        ok = (
            Z_ref.ndim == 2
            and Z_query.ndim == 2
            and Z_ref.shape[0] == train.size
            and Z_query.shape[0] == test.size
            and Z_ref.shape[1] == Z_query.shape[1]
        )
        if not ok:
            raise InputError(
                f"embedder {name!r} returned shapes {Z_ref.shape} and {Z_query.shape}; expected "
                f"({train.size}, d) and ({test.size}, d)."
            )
        if not (np.isfinite(Z_ref).all() and np.isfinite(Z_query).all()):
            raise InputError(f"embedder {name!r} returned NaN or infinite values (it diverged).")
        return Z_ref, Z_query

    return embed


def classification_benchmark(
    adata,
    obsm_keys: Sequence[str] | Mapping[str, str] | None,
    label_key: str,
    batch_key: str | None = None,
    scheme: Scheme = "holdout-batch",
    classifier: ClassifierName | ClassifierFactory = "xgboost",
    n_splits: int = 5,
    close_pairs: Sequence[tuple[str, str]] | None = None,
    seed: int = 0,
    *,
    embedders: Mapping[str, Embedder] | None = None,
    plot: bool = True,
    dropna: bool = False,
) -> ClassificationBenchmark:
    """Train a classifier on embeddings and score it on held-out cells or batches.

    Parameters
    ----------
    adata
        AnnData with the labels in ``obs[label_key]`` and the embeddings in ``obsm``.
    obsm_keys
        Embeddings to classify on: keys of ``adata.obsm`` (the method is named after the key)
        or a mapping ``{method name: obsm key}`` (the output of
        :func:`qbm_lite.baselines.train_methods`). ``None`` for the retrain scheme.
    label_key
        Column of ``obs`` with the cell types (categorical; no missing values).
    batch_key
        Column of ``obs`` with the batches; needed by the holdout schemes.
    scheme
        ``"random"``, ``"holdout-batch"`` or ``"holdout-batch-retrain"`` (module docstring).
    classifier
        ``"xgboost"`` (the paper's), ``"logistic"``, ``"knn"``, or a factory
        ``(seed, n_train) -> estimator`` with ``fit`` / ``predict``.
    n_splits
        Folds of the ``"random"`` scheme.
    close_pairs
        ``[(A, B), ...]`` cell types whose mutual confusion is reported in ``.pairs``.
    seed
        Seed of the folds and the classifier (and passed to the embedders); stored in the
        ``seed`` column so that runs over several seeds concatenate and pair on
        ``(seed, fold)``.
    embedders
        ``{method name: embedder}`` for ``scheme="holdout-batch-retrain"``: each is called once
        per held-out batch as ``embedder(reference, query, seed)`` with copies of the training
        and held-out cells, and returns their embeddings (:data:`Embedder`).
    plot
        Draw :attr:`ClassificationBenchmark.figure`.
    dropna
        Leave out cells with a missing label or batch, with a warning that gives their number
        (the package's missing-value policy, :mod:`qbm_lite.checks`); by default they are an
        error.

    Returns
    -------
    ClassificationBenchmark

    Raises
    ------
    qbm_lite.checks.InputError
        Missing label values (unless ``dropna=True``), a continuous label column, an unknown
        ``obsm`` key, NaNs in an embedding, a holdout scheme without ``batch_key`` or with a
        single batch, a rare type with ``"random"``, an unknown close-pair label, a bad option.

    Examples
    --------
    >>> keys = {"scVI": "X_scvi"}
    >>> res = classification_benchmark(adata, keys, "cell_type", "batch")  # doctest: +SKIP
    >>> res.summary()  # doctest: +SKIP
    """
    check_choice("scheme", scheme, Scheme)
    if not callable(classifier):
        check_choice("classifier", classifier, ClassifierName)
    methods = _methods(obsm_keys, embedders, scheme)
    if dropna:
        keys = [label_key] + ([batch_key] if batch_key is not None else [])
        adata, n_dropped = drop_missing(adata, keys)
        if n_dropped:
            warnings.warn(
                f"classification_benchmark: left out {n_dropped} cell(s) with a missing "
                f"value in {keys} (dropna=True).",
                stacklevel=2,
            )
    labels_col = obs_column(adata, label_key, role="label_key", kind="categorical")
    y = labels_col.astype(str).to_numpy()
    if scheme == "random":
        splits = random_splits(y, n_splits, seed)
    else:
        if batch_key is None:
            raise InputError(
                f"scheme={scheme!r} holds out whole batches: pass batch_key (the obs column "
                "with the batches), or use scheme='random'."
            )
        batches = obs_column(adata, batch_key, role="batch_key", kind="categorical")
        splits = holdout_batch_splits(batches.astype(str).to_numpy())
    if scheme != "holdout-batch-retrain":
        arrays = {m: obsm_array(adata, k, role=f"embedding {m!r}") for m, k in methods.items()}
    cats = labels_col.cat.categories if hasattr(labels_col, "cat") else pd.unique(labels_col)
    labels = np.array([str(c) for c in cats if str(c) in set(y)])
    pairs = _check_pairs(close_pairs, labels)
    name = classifier if isinstance(classifier, str) else getattr(classifier, "__name__", "custom")
    meta = {"seed": int(seed), "scheme": scheme, "classifier": name}

    score_rows, class_rows, pair_rows, unseen_rows = [], [], [], []
    confusion, counts = {}, {}
    for method, source in methods.items():
        if scheme == "holdout-batch-retrain":
            X = _embed_per_split(adata, source, method, seed)
        else:
            X = arrays[method]
        folds = cross_validate(X, y, splits, classifier, seed)
        s, c, pooled, u = _method_results(method, folds, labels, meta)
        score_rows += s
        class_rows += c
        unseen_rows += u
        counts[method] = pd.DataFrame(pooled, index=labels, columns=labels)
        totals = pooled.sum(axis=1, keepdims=True)
        confusion[method] = pd.DataFrame(
            _safe_divide(pooled.astype(float), np.broadcast_to(totals, pooled.shape)),
            index=labels,
            columns=labels,
        )
        pair_rows += _pair_rows(method, pooled, labels, pairs)

    result = ClassificationBenchmark(
        scores=pd.DataFrame(score_rows),
        per_class=pd.DataFrame(
            class_rows,
            columns=["method", "fold", "cell_type", "precision", "recall", "f1", "support"],
        ),
        confusion=confusion,
        counts=counts,
        pairs=pd.DataFrame(
            pair_rows,
            columns=["method", "a", "b", "a_as_b", "b_as_a", "confusion", "n_a", "n_b"],
        ),
        unseen=pd.DataFrame(unseen_rows, columns=["method", "fold", "cell_type", "n_cells"]),
        scheme=scheme,
        classifier=name,
    )
    if plot:
        from qbm_lite.plotting.classification import plot_classification

        result.figure = plot_classification(result)
    return result
