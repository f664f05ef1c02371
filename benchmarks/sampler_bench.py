"""Benchmark: the simulated CIM against dwave-samplers' simulated annealing (and the
``simulated-bifurcation`` package) on dense SK instances, and its sampling fidelity on n = 10 spin
glasses against exact enumeration.

Run: ``python benchmarks/sampler_bench.py`` (``--quick`` for a smoke run). Everything runs in one
process on the same instances. Times are wall-clock seconds on whatever this machine is doing:
on a shared machine they are noisy, so the load average is printed with the results.

Optimization (per n, 32 reads, couplings ±1/sqrt(n)):

- SA: ``dwave.samplers.SimulatedAnnealingSampler`` with 1000 sweeps; its median energy is the
  quality target.
- CIM (defaults): ``SimulatedCIMSampler().optimize_spins`` with its default schedule.
- CIM time-to-target: the CIM with 25, 50, 100, ... steps; the wall time of the shortest run
  whose median energy reaches SA's median (each run timed once, from scratch).
- SB package: ``simulated_bifurcation.minimize`` (ballistic, 32 agents, its early stopping) with
  at most 5x the CIM's default number of steps (its default cap of 10,000 steps took 20 s
  already at n = 100, too long for this benchmark's time budget).

Every solver runs on one thread: dwave-samplers' SA is single-threaded, and on a shared 2-core
machine two BLAS threads were measured 1.5-30x slower than one.

Sampling (β = 1, 100,000 reads): total-variation distance to the exact Boltzmann distribution of
the pure CIM, the corrected CIM (its default Metropolis sweeps), Metropolis from random states with
the same number of sweeps, and an exact sampler (the sampling-noise floor).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from dwave.samplers import SimulatedAnnealingSampler

from qbm_lite.exact import ExactBoltzmann, empirical_distribution, total_variation
from qbm_lite.ising import sherrington_kirkpatrick
from qbm_lite.samplers.cim import SimulatedCIMSampler, default_num_steps, spin_glass
from qbm_lite.samplers.cim_dynamics import torch_threads
from qbm_lite.samplers.exact import ExactSampler
from qbm_lite.samplers.gibbs import GibbsSampler, gibbs_sweeps

try:
    import simulated_bifurcation as sbpkg
except ImportError:  # optional baseline
    sbpkg = None

READS = 32


def energies_per_spin(model, spins: np.ndarray) -> np.ndarray:
    return np.asarray(model.energy(spins)) / model.n


LAST_CPU = 0.0  # CPU seconds of the last timed call (less sensitive to a busy machine)


def timed(fn):
    global LAST_CPU
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    LAST_CPU = time.process_time() - c0
    return out, time.perf_counter() - t0


def line(name: str, e: np.ndarray, seconds: float) -> str:
    return (
        f"  {name:<24s} best {e.min():+.4f}  median {np.median(e):+.4f}  "
        f"time {seconds:8.3f} s (cpu {LAST_CPU:8.3f} s)"
    )


def bench_optimize(n: int, sa_sweeps: int, ladder: list[int]) -> dict:
    model = sherrington_kirkpatrick(n, seed=n, distribution="pm1")
    bqm = model.to_bqm()
    h, J = model.to_torch(dtype=torch.float32)
    print(f"n = {n}  (load average {os.getloadavg()[0]:.1f})", flush=True)

    sa = SimulatedAnnealingSampler()
    ss, t_sa = timed(lambda: sa.sample(bqm, num_reads=READS, num_sweeps=sa_sweeps, seed=0))
    order = [ss.variables.index(i) for i in range(n)]
    e_sa = energies_per_spin(model, ss.record.sample[:, order])
    target = float(np.median(e_sa))
    cpu_sa = LAST_CPU
    print(line(f"SA {sa_sweeps} sweeps", e_sa, t_sa), flush=True)

    cim = SimulatedCIMSampler(seed=0)
    cim.optimize_spins(h, J, READS, num_steps=5)  # warm-up (allocations, thread pool)
    s, t_cim = timed(lambda: cim.optimize_spins(h, J, READS))
    e_cim = energies_per_spin(model, s.numpy())
    steps = default_num_steps(n)
    print(line(f"CIM defaults ({steps} st)", e_cim, t_cim), flush=True)

    ttt, ttt_steps, cpu_ttt = float("nan"), None, float("nan")
    for k in ladder:
        s, t_k = timed(lambda k=k: cim.optimize_spins(h, J, READS, num_steps=k))
        e_k = energies_per_spin(model, s.numpy())
        print(line(f"CIM {k} steps", e_k, t_k), flush=True)
        if np.median(e_k) <= target + 1e-12:
            ttt, ttt_steps, cpu_ttt = t_k, k, LAST_CPU
            break

    result = {"n": n, "sa": (e_sa, t_sa), "cim": (e_cim, t_cim), "ttt": ttt}
    result["cpu"] = cpu_sa / cpu_ttt
    if sbpkg is not None:
        Q = J / 2.0  # E = s.h + 1/2 s^T J s = s^T (J/2) s + h.s
        torch.manual_seed(0)
        with torch_threads(1):
            (spins, _), t_sb = timed(
                lambda: sbpkg.minimize(
                    Q,
                    h,
                    domain="spin",
                    agents=READS,
                    max_steps=5 * steps,
                    best_only=False,
                    verbose=False,
                )
            )
        e_sb = energies_per_spin(model, spins.numpy())
        print(line(f"SB package (<={5 * steps} st)", e_sb, t_sb), flush=True)
        result["sbpkg"] = (e_sb, t_sb)
        sb_better = np.median(e_cim) <= np.median(e_sb) and t_cim <= t_sb
        print(
            f"  CIM defaults vs SB package: median {np.median(e_cim):+.4f} vs "
            f"{np.median(e_sb):+.4f}, time {t_cim:.3f} s vs {t_sb:.3f} s -> "
            f"{'CIM better-or-equal at equal-or-lower time' if sb_better else 'CIM NOT better'}"
        )
    if ttt_steps is None:
        print(f"  speed-up to SA's median: not reached within {ladder[-1]} steps")
    else:
        print(
            f"  speed-up of the CIM over SA to reach SA's median ({target:+.4f}): "
            f"{t_sa / ttt:.1f}x wall-clock, {cpu_sa / cpu_ttt:.1f}x CPU time  "
            f"(CIM {ttt_steps} steps, {ttt:.3f} s; SA {t_sa:.3f} s)"
        )
    return result


def bench_sampling(reads: int, seeds: list[int]) -> None:
    print(f"\nSampling fidelity at beta = 1, n = 10, {reads} reads per sampler")
    families = {
        "SK + fields (J~N(0,1/n), h~N(0,0.3^2))": {"field_std": 0.3},
        "strong (J~N(0,4/n), h~N(0,0.5^2))": {"coupling_std": 2.0, "field_std": 0.5},
    }
    for name, kw in families.items():
        print(f"  {name}")
        for seed in seeds:
            model = spin_glass(10, seed=1000 + seed, **kw)
            p = ExactBoltzmann(model).probabilities(1.0)
            h, J = model.to_torch()
            cim = SimulatedCIMSampler(seed=seed)
            sweeps = cim.correction_sweeps

            def tv(x: torch.Tensor, p: np.ndarray = p) -> float:
                return total_variation(empirical_distribution(x.numpy()), p)

            # The corrected sampler is the pure CIM followed by Metropolis sweeps at beta, exactly
            # what sample_spins(correction_sweeps=k) does; here both come from one CIM run.
            pure_s, t_pure = timed(lambda: cim.sample_spins(h, J, reads, correction_sweeps=0))  # noqa: B023
            with torch_threads(1):
                corr_s, t_sweeps = timed(
                    lambda: gibbs_sweeps(pure_s, h, J, 1.0, sweeps, cim._blocks(J), "metropolis")  # noqa: B023
                )
            t_corr = t_pure + t_sweeps
            pure, corr = tv(pure_s), tv(corr_s)
            metro = GibbsSampler(num_sweeps=sweeps, rule="metropolis", seed=seed)
            rand = tv(metro.sample_spins(h, J, reads))
            floor = tv(ExactSampler(seed=seed).sample_spins(h, J, reads))
            verdict = "within 0.03" if corr <= floor + 0.03 else "NOT within 0.03"
            print(
                f"    instance {seed}: TV exact(noise floor) {floor:.3f} | pure CIM {pure:.3f} "
                f"({t_pure:.1f} s) | corrected CIM ({sweeps} sweeps) {corr:.3f} ({t_corr:.1f} s) | "
                f"Metropolis from random ({sweeps} sweeps) {rand:.3f} -> corrected {verdict}",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke run")
    args = parser.parse_args()
    t0 = time.perf_counter()
    print(
        f"torch {torch.__version__}, {os.cpu_count()} CPUs, float32; every solver runs "
        "single-threaded (SA from dwave-samplers is single-threaded)"
    )
    sizes = [100, 300] if args.quick else [100, 500, 1000, 2000]
    sweeps = 100 if args.quick else 1000
    ladder = [25, 50, 100, 200, 400, 800]
    results = [bench_optimize(n, sweeps, ladder) for n in sizes]
    print("\nSummary (energy per spin; speed-up = SA time / CIM time-to-SA-median)")
    for r in results:
        e_sa, t_sa = r["sa"]
        e_cim, t_cim = r["cim"]
        speedup = (
            "not reached"
            if np.isnan(r["ttt"])
            else f"{t_sa / r['ttt']:.1f}x (CPU time {r['cpu']:.1f}x)"
        )
        print(
            f"  n={r['n']:5d}  SA median {np.median(e_sa):+.4f} in {t_sa:7.2f} s | CIM median "
            f"{np.median(e_cim):+.4f} in {t_cim:6.3f} s | speed-up to target {speedup}"
        )
    bench_sampling(reads=10_000 if args.quick else 100_000, seeds=[0] if args.quick else [0, 1])
    print(f"\ntotal benchmark time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
