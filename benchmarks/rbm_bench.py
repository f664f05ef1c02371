"""RBM benchmark: qbm_lite.RBM with its DEFAULT settings against scikit-learn's BernoulliRBM, at
equal wall-clock time.

Both models have 16 hidden units and train on scikit-learn's bundled digits (8x8, binarized at
8/16, fixed held-out split from :func:`qbm_lite.data.images.load_digits_binary`), in this one
process, with one thread each (torch and the BLAS behind numpy).

1. Defaults: ``RBM(64, 16, seed=s).fit(X_train, seed=s, progress=False)`` with every other setting
   at its default (including the default monitoring), timed end to end; BernoulliRBM then gets
   exactly that wall time, at each of several learning rates (its default 0.1 and smaller ones),
   epoch after epoch of ``partial_fit`` on its own minibatches of 10; qbm_lite is compared with the
   *best* of those runs. Repeated over ``--seeds`` seeds (mean and standard error).
2. Longer budget (``--budget`` seconds, 0 to skip): ``fit(X_train, epochs=None, max_time=budget)``
   with the other defaults, against the best BernoulliRBM given the same budget.

Printed: exact average test log-likelihoods (log Z summed over the 2^16 hidden states) and the
differences, and the AIS estimate of log Z against the exact value for our model.

Run: ``python benchmarks/rbm_bench.py [--seeds 3] [--budget 10] [--sklearn-lrs 0.1,0.05,0.02,0.01]``
(about a minute per seed on one free core, plus 5 budgets).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from sklearn.neural_network import BernoulliRBM
from sklearn.utils import gen_even_slices
from threadpoolctl import threadpool_limits

from qbm_lite.boltzmann import RBM
from qbm_lite.data.images import load_digits_binary

N_HIDDEN = 16


def train_qbm_lite(
    X_train: np.ndarray, seed: int, max_time: float | None = None
) -> tuple[RBM, dict]:
    """``RBM(64, 16).fit`` with the default settings (or ``epochs=None, max_time=max_time``)."""
    rbm = RBM(X_train.shape[1], N_HIDDEN, seed=seed)
    extra = {} if max_time is None else {"epochs": None, "max_time": max_time}
    t0 = time.perf_counter()
    rbm.fit(X_train, progress=False, seed=seed, **extra)
    wall = time.perf_counter() - t0
    return rbm, {"wall": wall, "epochs": len(rbm.history)}


def train_sklearn(
    X_train: np.ndarray, budget: float, seed: int, learning_rate: float = 0.1
) -> tuple[BernoulliRBM, dict]:
    """BernoulliRBM (defaults but the learning rate), ``partial_fit`` on minibatches until the
    budget is spent."""
    sk = BernoulliRBM(n_components=N_HIDDEN, learning_rate=learning_rate, random_state=seed)
    X = X_train.astype(np.float64)
    n_batches = int(np.ceil(X.shape[0] / sk.batch_size))
    slices = list(gen_even_slices(n_batches * sk.batch_size, n_batches, n_samples=X.shape[0]))
    t0 = time.perf_counter()
    epochs, done = 0, False
    while not done:
        for sl in slices:
            sk.partial_fit(X[sl])
            if time.perf_counter() - t0 >= budget:
                done = True
                break
        epochs += 1
    return sk, {"wall": time.perf_counter() - t0, "epochs": epochs}


def rbm_from_sklearn(sk: BernoulliRBM) -> RBM:
    """The same model in qbm_lite: sklearn's energy is -b·v - c·h - vᵀWh with W = components_ᵀ."""
    rbm = RBM(sk.components_.shape[1], sk.components_.shape[0]).double()
    with torch.no_grad():
        rbm.W.copy_(torch.as_tensor(sk.components_.T))
        rbm.visible_bias.copy_(torch.as_tensor(sk.intercept_visible_))
        rbm.hidden_bias.copy_(torch.as_tensor(sk.intercept_hidden_))
    return rbm


def best_sklearn(
    X_train: np.ndarray, X_test: np.ndarray, budget: float, seed: int, lrs: list[float]
) -> tuple[float, float, dict[float, float]]:
    """Train BernoulliRBM for ``budget`` seconds at each learning rate; return the best test
    log-likelihood, its learning rate and all of them."""
    lls = {}
    for lr in lrs:
        sk, _ = train_sklearn(X_train, budget, seed, lr)
        lls[lr] = rbm_from_sklearn(sk).log_likelihood(X_test)
    best = max(lls, key=lls.get)
    return lls[best], best, lls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the defaults comparison")
    parser.add_argument("--budget", type=float, default=10.0, help="seconds; 0 skips part 2")
    parser.add_argument(
        "--sklearn-lrs", default="0.1,0.05,0.02,0.01", help="BernoulliRBM learning rates"
    )
    args = parser.parse_args()
    lrs = [float(x) for x in args.sklearn_lrs.split(",")]

    torch.set_num_threads(1)
    X_train, X_test, _, _ = load_digits_binary(threshold=8)
    print(
        f"digits binarized at 8/16: train {X_train.shape}, test {X_test.shape}; "
        f"{N_HIDDEN} hidden units; 1 thread each; BernoulliRBM learning rates {lrs}"
    )
    diffs = []
    with threadpool_limits(limits=1):
        print("1. qbm_lite.RBM(64, 16).fit(X) with default settings; BernoulliRBM given equal time")
        for seed in range(args.seeds):
            ours, info = train_qbm_lite(X_train, seed)
            ours_ll = ours.log_likelihood(X_test)
            sk_ll, best_lr, all_lls = best_sklearn(X_train, X_test, info["wall"], seed, lrs)
            diffs.append(ours_ll - sk_ll)
            print(
                f"  seed {seed}: qbm_lite {ours_ll:.3f} nats/image ({info['epochs']} epochs, "
                f"{info['wall']:.2f} s incl. monitoring) | BernoulliRBM in {info['wall']:.2f} s: "
                + ", ".join(f"lr {lr:g}: {v:.3f}" for lr, v in all_lls.items())
                + f" | qbm_lite - best (lr {best_lr:g}): {ours_ll - sk_ll:+.3f}"
            )
        d = np.asarray(diffs)
        se = d.std(ddof=1) / np.sqrt(d.size) if d.size > 1 else float("nan")
        verdict = "at least as good" if d.mean() >= 0 else "WORSE"
        print(
            f"  qbm_lite defaults - best BernoulliRBM at equal time: {d.mean():+.3f} ± {se:.3f} "
            f"nats/image (mean ± s.e. over {d.size} seeds; min {d.min():+.3f}): {verdict}"
        )
        if args.budget > 0:
            print(f"2. budget {args.budget:g} s: fit(epochs=None, max_time=budget), other defaults")
            ours, info = train_qbm_lite(X_train, 0, max_time=args.budget)
            ours_ll = ours.log_likelihood(X_test)
            sk_ll, best_lr, all_lls = best_sklearn(X_train, X_test, args.budget, 0, lrs)
            print(
                f"  qbm_lite {ours_ll:.3f} ({info['epochs']} epochs) | BernoulliRBM: "
                + ", ".join(f"lr {lr:g}: {v:.3f}" for lr, v in all_lls.items())
                + f" | qbm_lite - best (lr {best_lr:g}): {ours_ll - sk_ll:+.3f} nats/image"
            )
    ours_log_z = ours.log_partition("exact")
    t0 = time.perf_counter()
    ais = ours.ais(num_chains=100, num_betas=1000, seed=0)
    ais_time = time.perf_counter() - t0
    diff = ais.log_z - ours_log_z
    print(
        f"AIS log Z of the last qbm_lite model (100 chains, 1000 temperatures, {ais_time:.1f} s): "
        f"{ais.log_z:.4f} ± {ais.std_err:.4f} vs exact {ours_log_z:.4f} "
        f"(difference {diff:+.4f} = {diff / ais.std_err:+.1f} s.e.)"
    )


if __name__ == "__main__":
    main()
