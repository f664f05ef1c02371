"""RBM benchmark: qbm_lite.RBM (PCD) against scikit-learn's BernoulliRBM at equal wall-clock time.

Both models have 16 hidden units and train on scikit-learn's bundled digits (8x8, binarized at
8/16, fixed split from :func:`qbm_lite.data.images.load_digits_binary`) for the same time budget,
in this one process, with one thread each (torch and the BLAS behind numpy). BernoulliRBM runs
with its default hyperparameters (learning rate 0.1, minibatches of 10, PCD with one Gibbs step),
epoch after epoch of ``partial_fit`` on its own minibatches, until the budget is spent; because a
constant learning rate of 0.1 is not kind to it, it also runs with smaller learning rates, and
qbm_lite is compared with the *best* of those runs.

Printed: each model's exact average test log-likelihood (log Z summed over the 2^16 hidden
states), and the AIS estimate of log Z against the exact value for our model.

Run: ``python benchmarks/rbm_bench.py [--budget SECONDS] [--sklearn-lrs 0.1,0.05,0.02]`` (default
20 s per model; the run takes (1 + number of sklearn learning rates) budgets plus ~10 s).
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


def train_qbm_lite(X_train: np.ndarray, budget: float, seed: int) -> tuple[RBM, dict]:
    """PCD with persistent chains, Adam and a linear learning-rate decay over the budget."""
    rbm = RBM(X_train.shape[1], N_HIDDEN, seed=seed)
    t0 = time.perf_counter()
    rbm.fit(
        X_train,
        epochs=None,
        max_time=budget,
        method="pcd",
        k=1,
        batch_size=64,
        num_chains=256,
        lr=0.01,
        optimizer="adam",
        lr_schedule="linear",
        monitor="none",
        progress=False,
        seed=seed,
    )
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=20.0, help="seconds of training per model")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--sklearn-lrs", default="0.1,0.05,0.02", help="BernoulliRBM learning rates (0.1: default)"
    )
    args = parser.parse_args()

    torch.set_num_threads(1)
    X_train, X_test, _, _ = load_digits_binary(threshold=8)
    print(
        f"digits binarized at 8/16: train {X_train.shape}, test {X_test.shape}; "
        f"{N_HIDDEN} hidden units; budget {args.budget:.0f} s per model, 1 thread each"
    )
    with threadpool_limits(limits=1):
        ours, ours_info = train_qbm_lite(X_train, args.budget, args.seed)
        ours_log_z = ours.log_partition("exact")
        ours_ll = ours.log_likelihood(X_test, log_z=ours_log_z)
        print(
            f"qbm_lite.RBM (PCD-1, 256 chains, batch 64, Adam lr 0.01, linear decay): "
            f"{ours_info['wall']:.1f} s, {ours_info['epochs']} epochs, "
            f"exact test log-likelihood {ours_ll:.3f} nats/image"
        )
        sk_lls = {}
        for lr in (float(x) for x in args.sklearn_lrs.split(",")):
            sk, sk_info = train_sklearn(X_train, args.budget, args.seed, lr)
            sk_lls[lr] = rbm_from_sklearn(sk).log_likelihood(X_test)
            default = " (default)" if lr == 0.1 else ""
            print(
                f"BernoulliRBM (PCD-1, batch 10, lr {lr:g}{default}): {sk_info['wall']:.1f} s, "
                f"{sk_info['epochs']} epochs, exact test log-likelihood {sk_lls[lr]:.3f} nats/image"
            )
    best_lr = max(sk_lls, key=sk_lls.get)
    sk_ll = sk_lls[best_lr]
    verdict = "higher" if ours_ll > sk_ll else "NOT higher"
    print(
        f"qbm_lite - best BernoulliRBM (lr {best_lr:g}): {ours_ll - sk_ll:+.3f} nats/image at "
        f"equal time (qbm_lite is {verdict}); "
        f"per pixel {(ours_ll - sk_ll) / X_test.shape[1]:+.4f} nats"
    )
    t0 = time.perf_counter()
    ais = ours.ais(num_chains=100, num_betas=1000, seed=args.seed)
    ais_time = time.perf_counter() - t0
    diff = ais.log_z - ours_log_z
    within = abs(diff) <= 3 * ais.std_err
    print(
        f"AIS log Z of the qbm_lite model (100 chains, 1000 temperatures, {ais_time:.1f} s): "
        f"{ais.log_z:.4f} ± {ais.std_err:.4f} vs exact {ours_log_z:.4f} "
        f"(difference {diff:+.4f}, within 3 s.e.: {'yes' if within else 'no'})"
    )


if __name__ == "__main__":
    main()
