"""Reference mapping of new cells (scArches, the way scvi-tools users know it).

:class:`ArchesMixin` gives :class:`~qbm_lite.vae.model.QBMVAE`:

- :meth:`~ArchesMixin.prepare_query_anndata`: a query AnnData with the reference's genes in the
  reference's order, genes the query lacks padded with zeros and reported;
- :meth:`~ArchesMixin.load_query_data`: a model for the query built from the reference. New batch
  labels extend the batch covariate; the weights that read the new batches' one-hot columns are
  the only ones ``train`` changes (scArches' "architecture surgery", Lotfollahi et al. 2022),
  initialized at zero so that before training a new batch decodes like no batch effect.

Why the reference stays fixed: the encoder does not see the batch by default, so a cell's latent
depends on the encoder alone, which is frozen; the new one-hot columns are never active for
reference cells, so their decoder outputs do not change either. With ``encode_covariates=True``
the encoder also gets new (trainable) columns, read only by query cells.

The mixin uses the model's public ``save``/``load`` and its ``module``, ``config``,
``batch_categories``, ``var_names`` and ``device``.
"""

from __future__ import annotations

import os
import tempfile
import warnings

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from qbm_lite.vae.persistence import model_file_for_load

__all__ = ["ArchesMixin", "MIN_VAR_NAME_RATIO"]

#: Below this share of reference genes found in a query, :meth:`prepare_query_anndata` warns
#: (scvi-tools' threshold).
MIN_VAR_NAME_RATIO = 0.8


def _reference_state(reference_model) -> dict:
    """The saved form of a reference model (an instance or a path written by ``save``)."""
    if isinstance(reference_model, str | os.PathLike):
        # A directory written by ``save`` (holding model.pt) or the saved file itself.
        path = model_file_for_load(reference_model)
        return torch.load(path, map_location="cpu", weights_only=True)
    if not hasattr(reference_model, "save") or not hasattr(reference_model, "var_names"):
        raise TypeError(
            "reference_model must be a trained QBMVAE or the path of one saved with "
            f"model.save(path); got {type(reference_model).__name__}."
        )
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "reference.pt")
        reference_model.save(path)
        return torch.load(path, map_location="cpu", weights_only=True)


def _select_columns(X, selection: sp.csr_matrix):
    """``X`` (cells x query genes) times a 0/1 selection matrix (query genes x reference genes).

    Sparse stays sparse (CSR), dense stays dense; values are copied exactly.
    """
    if X is None:
        return None
    if sp.issparse(X):
        return sp.csr_matrix(X @ selection.astype(X.dtype))
    X = np.asarray(X)
    out = np.zeros((X.shape[0], selection.shape[1]), dtype=X.dtype)
    q_pos, r_pos = selection.nonzero()
    out[:, r_pos] = X[:, q_pos]
    return out


def _input_layer_keys(config: dict, net: str) -> list[str]:
    """State-dict keys of the Linear layers that read a network's input (latent/genes + batch)."""
    if config["n_layers"] > 0:
        return [f"{net}.body.0.weight"]
    keys = [f"{net}.head.weight"]
    if net == "decoder" and config["likelihood"] == "zinb":
        keys.append("decoder.dropout_head.weight")
    return keys


def _mask_grad(keep: torch.Tensor):
    def hook(grad: torch.Tensor) -> torch.Tensor:
        return grad * keep

    return hook


def _restore_frozen(weight: torch.nn.Parameter, keep: torch.Tensor, frozen: torch.Tensor):
    """Forward pre-hook that re-imposes the frozen columns (exact even with weight decay)."""

    def hook(_module, _inputs) -> None:
        with torch.no_grad():
            weight.mul_(keep).add_(frozen * (1 - keep))

    return hook


class ArchesMixin:
    """Query mapping for :class:`QBMVAE`: prepare a query, map it, train only new weights."""

    @staticmethod
    def prepare_query_anndata(
        adata,
        reference_model,
        return_reference_var_names: bool = False,
    ):
        """Reorder a query's genes as the reference's, padding the missing ones with zeros.

        Parameters
        ----------
        adata
            Query cells (any genes, any order). ``X`` and every layer are converted.
        reference_model
            The reference :class:`QBMVAE`, or the path of one saved with ``save``.
        return_reference_var_names
            Return only the reference's gene names (a :class:`pandas.Index`).

        Returns
        -------
        anndata.AnnData
            A new AnnData: the query's cells (``obs``, ``obsm`` copied) on the reference's genes
            in the reference's order; ``var["missing_in_query"]`` marks the zero-padded genes and
            ``uns["query_genes"]`` reports ``n_reference``, ``n_found``, ``n_missing``,
            ``missing`` (their names) and ``n_dropped`` (query genes the reference lacks).
            Warns when less than ``MIN_VAR_NAME_RATIO`` (80%) of the reference genes are found:
            the query's latents then rest on few of the genes the encoder reads.

        Raises
        ------
        TypeError
            ``adata`` is not an AnnData.
        ValueError
            Duplicated gene names in the query, or no gene in common with the reference.
        """
        import anndata as ad

        state = _reference_state(reference_model)
        ref_names = [str(g) for g in state["var_names"]]
        if return_reference_var_names:
            return pd.Index(ref_names)
        if not isinstance(adata, ad.AnnData):
            raise TypeError(f"adata must be an AnnData object; got {type(adata).__name__}.")
        names = [str(g) for g in adata.var_names]
        if len(set(names)) != len(names):
            raise ValueError(
                "the query has duplicated gene names; make them unique first "
                "(adata.var_names_make_unique())."
            )
        pos = {g: i for i, g in enumerate(names)}
        found = [(pos[g], j) for j, g in enumerate(ref_names) if g in pos]
        if not found:
            raise ValueError(
                f"the query shares no gene with the reference ({len(ref_names)} genes, e.g. "
                f"{ref_names[:3]}); check that both use the same gene identifiers."
            )
        q_pos, r_pos = (np.array(v) for v in zip(*found, strict=True))
        selection = sp.csr_matrix(
            (np.ones(len(found)), (q_pos, r_pos)), shape=(len(names), len(ref_names))
        )
        missing = [g for g in ref_names if g not in pos]
        var = pd.DataFrame(index=pd.Index(ref_names))
        var["missing_in_query"] = [g not in pos for g in ref_names]
        out = ad.AnnData(
            X=_select_columns(adata.X, selection),
            obs=adata.obs.copy(),
            var=var,
            layers={k: _select_columns(v, selection) for k, v in adata.layers.items()},
            obsm={k: v.copy() for k, v in adata.obsm.items()},
        )
        out.uns["query_genes"] = {
            "n_reference": len(ref_names),
            "n_found": len(found),
            "n_missing": len(missing),
            "missing": missing,
            "n_dropped": len(names) - len(found),
        }
        ratio = len(found) / len(ref_names)
        if ratio < MIN_VAR_NAME_RATIO:
            warnings.warn(
                f"only {len(found)} of the reference's {len(ref_names)} genes ({ratio:.0%}) are in "
                "the query; the rest are padded with zeros, which the encoder reads as no "
                "expression. Check the gene identifiers, or map with a reference trained on the "
                "shared genes.",
                UserWarning,
                stacklevel=2,
            )
        return out

    @classmethod
    def load_query_data(
        cls,
        adata,
        reference_model,
        unfrozen: bool = False,
        sampler=None,
        device: str = "auto",
    ):
        """A model for query cells built from a reference, ready to map them.

        New labels in the reference's batch column extend the batch covariate. The input
        layers of the decoder (and of the encoder with ``encode_covariates=True``) get zero
        columns for them; every other weight is frozen, so ``model.train(...)`` on the query
        changes only those columns (scArches, Lotfollahi et al. 2022). When the query brings no
        new batch (or the model has no batch covariate) nothing needs training: the encoder maps
        the query as it is.

        Parameters
        ----------
        adata
            Query cells on the reference's genes, in order (see :meth:`prepare_query_anndata`),
            with the reference's layer and batch column.
        reference_model
            The reference :class:`QBMVAE`, or the path of one saved with ``save``. It is not
            modified.
        unfrozen
            Train every weight on the query (fine-tuning; the reference's latents then change).
        sampler, device
            As in :meth:`QBMVAE.load`.

        Returns
        -------
        QBMVAE
            The query model; ``query_info`` holds ``new_batches`` and ``n_trainable`` (the number
            of weights ``train`` may change). Its ``get_latent_representation`` maps reference
            cells exactly as the reference does. The freezing is not saved with ``save``.

        Raises
        ------
        ValueError
            Genes that differ from the reference's, or a missing batch column.
        """
        state = _reference_state(reference_model)
        config = dict(state["config"])
        ref_names = [str(g) for g in state["var_names"]]
        names = [str(g) for g in getattr(adata, "var_names", [])]
        if names != ref_names:
            raise ValueError(
                f"the query's genes differ from the reference's ({len(names)} vs "
                f"{len(ref_names)}); align them first: "
                "adata = QBMVAE.prepare_query_anndata(adata, reference_model)."
            )
        ref_cats = [str(c) for c in state["batch_categories"]]
        key = config["batch_key"]
        new_cats: list[str] = []
        if key is not None:
            if key not in adata.obs:
                raise ValueError(
                    f"the query has no obs[{key!r}] column, the reference's batch key; add the "
                    "query's batch labels there (one new label for a new batch)."
                )
            col = adata.obs[key]
            seen = (
                [str(c) for c in col.cat.categories]
                if isinstance(col.dtype, pd.CategoricalDtype)
                else list(dict.fromkeys(col.astype(str)))
            )
            used = set(col.astype(str))
            new_cats = [c for c in seen if c not in ref_cats and c in used]
        all_cats = ref_cats + new_cats
        old_nb = len(ref_cats) if len(ref_cats) > 1 else 0
        new_nb = len(all_cats) if len(all_cats) > 1 else 0
        grow = new_nb - old_nb
        trainable: dict[str, list[int]] = {}
        if grow > 0:
            nets = ["decoder"] + (["encoder"] if config["encode_covariates"] else [])
            for net in nets:
                base = config["n_latent"] if net == "decoder" else len(ref_names)
                for k in _input_layer_keys(config, net):
                    w = state["state_dict"][k]
                    if w.shape[1] != base + old_nb:  # pragma: no cover - guards a layout change
                        raise RuntimeError(
                            f"{k} has {w.shape[1]} inputs, expected {base + old_nb}; the "
                            "network layout changed, update qbm_lite.vae.query."
                        )
                    pad = torch.zeros(w.shape[0], grow, dtype=w.dtype)
                    state["state_dict"][k] = torch.cat([w, pad], dim=1)
                    trainable[k] = [base + j for j in range(len(ref_cats), len(all_cats))]
        state["batch_categories"] = all_cats
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "query.pt")
            torch.save(state, path)
            model = cls.load(path, adata, sampler=sampler, device=device)
        model.query_info = {"new_batches": new_cats, "n_trainable": 0}
        if unfrozen:
            model.query_info["n_trainable"] = sum(p.numel() for p in model.module.parameters())
            return model
        params = dict(model.module.named_parameters())
        for p in params.values():
            p.requires_grad_(False)
        for k, cols in trainable.items():
            weight = params[k]
            keep = torch.zeros_like(weight)
            keep[:, cols] = 1.0
            weight.requires_grad_(True)
            weight.register_hook(_mask_grad(keep))
            layer = model.module.get_submodule(k.rsplit(".", 1)[0])
            layer.register_forward_pre_hook(_restore_frozen(weight, keep, weight.detach().clone()))
            model.query_info["n_trainable"] += int(keep.sum())
        return model
