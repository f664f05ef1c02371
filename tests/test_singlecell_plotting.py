"""Single-cell figures stay legible: heatmap numbers, a legend off the bars, wrapped panels."""

import matplotlib

matplotlib.use("Agg")

import anndata as ad  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402

from qbm_lite.plotting.singlecell import _text_colour, plot_benchmark, plot_embeddings  # noqa: E402


def _scores() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "iLISI": [0.0, 0.5, 1.0],
            "cLISI": [0.95, 0.45, np.nan],
            "Bio conservation": [0.9, 0.6, 0.3],
            "Batch correction": [0.2, 0.5, 0.8],
            "Total": [0.62, 0.56, 0.5],
        },
        index=["A", "B", "C"],
    )


def test_text_colour_contrasts_with_the_cell() -> None:
    assert _text_colour((0.0, 0.0, 0.0, 1.0)) == "white"
    assert _text_colour((1.0, 1.0, 1.0, 1.0)) == "black"
    cmap = plt.get_cmap("PRGn")
    assert _text_colour(cmap(0.0)) == "white"  # dark purple
    assert _text_colour(cmap(1.0)) == "white"  # dark green
    assert _text_colour(cmap(0.5)) == "black"  # near white


def test_heatmap_numbers_are_white_on_dark_cells_and_black_on_light() -> None:
    fig = plot_benchmark(_scores())
    heat = fig.axes[1]
    colours = {t.get_text(): to_rgb(t.get_color()) for t in heat.texts}
    assert colours["0.00"] == (1.0, 1.0, 1.0) and colours["1.00"] == (1.0, 1.0, 1.0)
    assert colours["0.50"] == (0.0, 0.0, 0.0) and colours["0.45"] == (0.0, 0.0, 0.0)
    assert "n/a" in colours  # a missing score is labelled, not printed as "nan"
    plt.close(fig)


def test_bar_legend_covers_no_bar() -> None:
    fig = plot_benchmark(_scores())
    fig.canvas.draw()
    ax = fig.axes[0]
    legend = fig.legends[0].get_window_extent()
    bars = [p.get_window_extent() for p in ax.patches]
    assert bars and not any(legend.overlaps(b) for b in bars)
    assert legend.y1 < ax.get_window_extent().y0  # under the axes, inside the figure
    assert legend.y0 >= 0 and legend.x0 >= 0 and legend.x1 <= fig.bbox.x1
    plt.close(fig)


def _adata(n_methods: int) -> tuple[ad.AnnData, list[str]]:
    rng = np.random.default_rng(0)
    adata = ad.AnnData(np.zeros((60, 3), dtype=np.float32))
    adata.obs["batch"] = pd.Categorical(rng.integers(0, 2, 60).astype(str))
    adata.obs["cell_type"] = pd.Categorical(rng.integers(0, 3, 60).astype(str))
    keys = [f"X_m{i}" for i in range(n_methods)]
    for key in keys:
        adata.obsm[key] = rng.normal(size=(60, 4)).astype(np.float32)
    return adata, keys


def test_six_methods_wrap_into_three_columns() -> None:
    adata, keys = _adata(6)
    fig = plot_embeddings(adata, keys, method="pca")
    drawn = [ax for ax in fig.axes if ax.axison and ax.get_title()]
    assert len(drawn) == 12  # 6 methods x 2 colours
    assert fig.get_figwidth() <= 10.0  # 3 panels wide, not 6
    assert sorted({ax.get_title() for ax in drawn}) == sorted(keys)
    plt.close(fig)


def test_an_incomplete_last_row_leaves_blank_panels() -> None:
    adata, keys = _adata(4)
    fig = plot_embeddings(adata, keys, method="pca", max_columns=3)
    shown = [ax for ax in fig.axes if ax.axison]
    assert len(fig.axes) == 12 and len(shown) == 8
    plt.close(fig)
    with pytest.raises(ValueError, match="max_columns"):
        plot_embeddings(adata, keys, method="pca", max_columns=0)
    with pytest.raises(ValueError, match="empty"):
        plot_embeddings(adata, [], method="pca")
