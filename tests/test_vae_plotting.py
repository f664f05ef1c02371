"""Smoke tests of the chapter's plot helpers (Agg backend, no display)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from qbm_lite.plotting.vae import (  # noqa: E402
    plot_history,
    plot_hybrid_loop,
    plot_image_grid,
    plot_relaxations,
    plot_time_split,
)


def test_plots_draw_what_they_are_given():
    hist = {
        "a": {"validation_loss": [3.0, 2.0], "time_sampler": [0.1, 0.1], "time_networks": [1, 1]},
        "b": {"validation_loss": [4.0, 1.0], "time_sampler": [0.0, 0.0], "time_networks": [2, 2]},
    }
    ax = plot_history(hist, "validation_loss")
    assert len(ax.lines) == 2 and list(ax.lines[1].get_ydata()) == [4.0, 1.0]
    ax = plot_time_split(hist)
    heights = [p.get_height() for p in ax.patches]
    assert np.allclose(sorted(heights), sorted([1.0, 2.0, 0.1, 0.0]))
    axes = plot_relaxations((0.3,), beta=5.0)
    assert len(axes) == 2 and len(axes[0].lines) == 1
    ax = plot_image_grid(np.eye(64)[:10], ncols=5)
    assert ax.images[0].get_array().shape == (2 * 9 - 1, 5 * 9 - 1)
    ax = plot_hybrid_loop()
    assert len(ax.patches) >= 7
    plt.close("all")
