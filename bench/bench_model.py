"""Benchmark of the multi-task model on a demo world: training examples/s, scoring candidates/s, and the
evaluation table (architectures over several seeds; the model's options, each with and without, over as many
seeds; the ablations, the LightGBM peer where LightGBM is installed, the baselines and the oracle).

    python bench/bench_model.py --data-dir /tmp/vr-default [--seeds 3] [--ablation-seeds 1] [--append]
    python bench/bench_model.py --data-dir /tmp/vr-default --peers-only [--seeds 3]
    python bench/bench_model.py --data-dir /tmp/vr-default --throughput-only

The data dir must hold a demo world (`vidrec --data-dir DIR demo`); the benchmark copies it and leaves
the original alone. --append adds the results to bench/RESULTS.md with the machine they ran on. --log
keeps each training run's metrics as it ends; a rerun with the same log trains only the runs it lacks.
--peers-only runs the LightGBM peer and the baselines alone (seconds), beside the variants the log holds
for every seed. --throughput-only trains the default architecture with each model option in turns (3 rounds of 2
epochs) and prints each option's training examples/s and its ratio to the network without biases.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.demo.command import demo_truth  # noqa: E402
from ingest.learning import DEFAULT_ARCH, DEFAULT_BALANCE, TrainOptions, load_model, save_model  # noqa: E402
from ingest.learning.evaluation import ablation_table, add_deltas, baseline_rows, peer_rows, rows_of  # noqa: E402
from ingest.learning.features import build_features  # noqa: E402
from ingest.learning.training import train_model  # noqa: E402
from ingest.store import Store  # noqa: E402
from models.context import Context  # noqa: E402

CANDIDATES = 500
REQUESTS = 200


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, Python {platform.python_version()}"


def bench_training(store: Store) -> dict:
    """The default model as `vidrec train` makes it: wall time, epochs, training examples/s."""
    started = time.perf_counter()
    trained = train_model(store, TrainOptions(progress=False))
    seconds = time.perf_counter() - started
    save_model(store, trained)
    fit = trained.fits["all"]
    return {
        "arch": DEFAULT_ARCH,
        "seconds": round(seconds, 1),
        "fit_seconds": round(fit.seconds, 1),
        "epochs": fit.epochs_run,
        "best_epoch": fit.best_epoch,
        "examples_per_second": round(fit.examples_per_second),
        "train_rows": len(trained.split.train),
        "click_auc": trained.metrics["click"]["auc"],
    }


OPTIONS: dict[str, dict[str, dict]] = {  # TrainOptions changes against the network without any of the options
    "without biases": {"net": {"biases": False}},
    "biases (default)": {},
    "+ cross": {"net": {"cross_layers": 2, "cross_rank": 32}},
    "+ context terms": {"net": {"context_terms": True}},
    "+ ranking": {"train": {"ranking": 0.1}},
}


def bench_option_throughput(store: Store, rounds: int = 3, epochs: int = 2) -> dict:
    """Training examples/s of the default architecture with each option, in turns (`rounds` rounds of
    `epochs` epochs each, no early stopping), so that every option meets the same load; each option's median
    over the rounds and its ratio to the network without biases (the network before them)."""
    features = build_features(store)
    seen: dict[str, list[float]] = {name: [] for name in OPTIONS}
    for round_ in range(rounds):
        for name, changes in OPTIONS.items():
            options = TrainOptions(
                seed=round_,
                epochs=epochs,
                progress=False,
                diagnostics=False,
                net=changes.get("net", {}),
                train={"patience": epochs, **changes.get("train", {})},
            )
            trained = train_model(store, options, features=features)
            seen[name].append(trained.fits["all"].examples_per_second)
            print(f"[bench] {name} round {round_}: {seen[name][-1]:,.0f} examples/s", file=sys.stderr, flush=True)
    base = statistics.median(seen["without biases"])
    return {
        name: {"examples_per_second": round(statistics.median(v)), "ratio": round(statistics.median(v) / base, 3)}
        for name, v in seen.items()
    }


def bench_scoring(store: Store) -> dict:
    """Requests of 500 candidates for random users and contexts, after a warm-up; per-request latency.
    (`score` runs on one torch thread whatever the process has: see ingest/learning/scoring.py.)"""
    model = load_model(store)
    _, video_ids, _ = model.video_vectors()
    features = build_features(store, model.vocabulary)
    rng = np.random.default_rng(0)
    users = rng.choice(features.user_ids, REQUESTS)
    devices, regions = model.vocabulary.devices, model.vocabulary.regions
    requests = [
        (
            u,
            list(rng.choice(video_ids, CANDIDATES, replace=len(video_ids) < CANDIDATES)),  # repeats: fine
            Context(
                int(rng.integers(24)),
                int(rng.integers(7)),
                devices[rng.integers(len(devices))],
                regions[rng.integers(len(regions))],
            ),
        )
        for u in users
    ]
    for user, candidates, context in requests[:10]:  # warm-up
        model.score(user, candidates, context)
    latencies = []
    for user, candidates, context in requests:
        started = time.perf_counter()
        model.score(user, candidates, context)
        latencies.append(time.perf_counter() - started)
    median = statistics.median(latencies)
    out = {
        "candidates": len(requests[0][1]),
        "median_ms": round(1000 * median, 2),
        "p95_ms": round(1000 * float(np.quantile(latencies, 0.95)), 2),
        "candidates_per_second": round(len(requests[0][1]) / median),
    }
    started = time.perf_counter()
    for user, _, context in requests:
        model.user_vector(user, context)
    out["user_vector_ms"] = round(1000 * (time.perf_counter() - started) / len(requests), 2)
    return out


def table_markdown(rows: list[dict]) -> str:
    lines = ["| variant | task | metric | mean | std | vs single-task |", "|---|---|---|---|---|---|"]
    for r in rows:
        delta = r.get("delta_vs_single_task")
        std = r.get("std")
        lines.append(
            f"| {r['name']} | {r['task']} | {r['metric']} | {r['value']:.4f} | "
            f"{'' if std is None else f'{std:.4f}'} | {'' if delta is None else f'{delta:+.4f}'} |"
        )
    return "\n".join(lines)


def evaluation_table(store: Store, seeds: int, ablation_seeds: int, log: Path) -> tuple[list[dict], str]:
    """Architectures over `seeds` seeds; then, on the best multi-task one by mean click AUC, the context and
    modality ablations and the other balancing methods. Each run's metrics go to `log` (JSON lines) as it
    ends, and runs already in the log are not trained again (a long benchmark can resume)."""
    done = {}
    if log.exists():
        for line in log.read_text(encoding="utf-8").splitlines():
            run = json.loads(line)
            done[(run["name"], run["seed"])] = run["metrics"]

    def on_run(name, seed, trained, metrics):
        done[(name, seed)] = metrics
        with open(log, "a", encoding="utf-8") as f:
            f.write(
                json.dumps(
                    {
                        "name": name,
                        "seed": seed,
                        "seconds": round(trained.seconds, 1),
                        "best_epochs": {n: x.best_epoch for n, x in trained.fits.items()},
                        "metrics": metrics,
                    }
                )
                + "\n"
            )
        print(
            f"[bench] {name} seed {seed}: click AUC {metrics['click']['auc']:.4f} in {trained.seconds:.0f} s",
            file=sys.stderr,
            flush=True,
        )

    def rows_for(names: list[str], n_seeds: int, **kwargs) -> list[dict]:
        missing = [n for n in names if any((n, s) not in done for s in range(n_seeds))]
        if missing:
            ablation_table(
                store, seeds=n_seeds, only=missing, on_run=on_run, progress=False, truth=demo_truth(store), **kwargs
            )
        return [r for n in names for r in rows_of(n, [done[(n, s)] for s in range(n_seeds)])]

    archs = ["single-task", "shared-bottom", "mmoe", "ple"]
    rows = rows_for(archs, seeds)
    click = {r["name"]: r["value"] for r in rows if r["task"] == "click" and r["metric"] == "auc"}
    best = max(archs[1:], key=lambda a: click[a])
    # the model's options, each against the default it changes, with as many seeds as the architectures
    options = [f"{best} without biases", f"{best} + cross", f"{best} + context terms", f"{best} + ranking"]
    rows += rows_for(options, seeds, default_arch=best)
    balancing = [
        (f"{best} {b}", {"arch": best, "balance": b}) for b in ("fixed", "gradnorm", "dwa") if b != DEFAULT_BALANCE
    ]
    balancing.append((f"{best} {DEFAULT_BALANCE} + pcgrad", {"arch": best, "pcgrad": True}))
    names = [f"{best} without context", f"{best} video only", f"{best} text only"] + [n for n, _ in balancing]
    rows += rows_for(names, ablation_seeds, default_arch=best, extra=balancing)
    return add_deltas(rows + peers_and_baselines(store, seeds)), best


def peers_and_baselines(store: Store, seeds: int) -> list[dict]:
    """The LightGBM peer (`seeds` seeds; none without LightGBM), popularity and the oracle, on the table's split."""
    features = build_features(store)
    split = TrainOptions().split(features)
    started = time.perf_counter()
    rows = peer_rows(features, split, demo_truth(store), seeds)
    if rows:
        click = next(r for r in rows if r["task"] == "click" and r["metric"] == "auc")
        print(
            f"[bench] {click['name']}: click AUC {click['value']:.4f} over {seeds} seed(s) "
            f"in {time.perf_counter() - started:.1f} s",
            file=sys.stderr,
            flush=True,
        )
    return rows + baseline_rows(features, split, demo_truth(store))


def logged_rows(log: Path, seeds: int) -> list[dict]:
    """Rows of the variants the log holds for all of seeds 0..seeds-1 (in the order first logged)."""
    runs: dict[str, dict[int, dict]] = {}
    if log.exists():
        for line in log.read_text(encoding="utf-8").splitlines():
            run = json.loads(line)
            runs.setdefault(run["name"], {})[run["seed"]] = run["metrics"]
    return [
        r
        for name, by_seed in runs.items()
        if all(s in by_seed for s in range(seeds))
        for r in rows_of(name, [by_seed[s] for s in range(seeds)])
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True, type=Path)
    parser.add_argument("--seeds", type=int, default=3, help="seeds per architecture")
    parser.add_argument("--ablation-seeds", type=int, default=1, help="seeds per ablation and balancing method")
    parser.add_argument("--skip-table", action="store_true")
    parser.add_argument(
        "--peers-only", action="store_true", help="only the LightGBM peer and the baselines (with the log's variants)"
    )
    parser.add_argument(
        "--throughput-only", action="store_true", help="training examples/s of each model option, in turns"
    )
    parser.add_argument("--append", action="store_true", help="append to bench/RESULTS.md")
    parser.add_argument("--log", type=Path, default=Path("bench-model-runs.jsonl"), help="per-run metrics (JSON lines)")
    args = parser.parse_args()
    if args.peers_only:
        if args.append:
            parser.error("--append writes the whole benchmark; --peers-only prints its rows only")
        store = Store(args.data_dir, read_only=True)  # nothing is written
        started = time.perf_counter()
        rows = add_deltas(logged_rows(args.log, args.seeds) + peers_and_baselines(store, args.seeds))
        print(json.dumps({"machine": machine(), "seconds": round(time.perf_counter() - started, 1), "table": rows}))
        print(table_markdown(rows))
        return
    if args.throughput_only:
        store = Store(args.data_dir, read_only=True)  # trains, saves nothing
        print(json.dumps({"machine": machine(), "options": bench_option_throughput(store)}, indent=1))
        return
    work = Path(tempfile.mkdtemp(prefix="bench-model-"))
    shutil.copytree(args.data_dir, work / "data")
    store = Store(work / "data")
    results = {"machine": machine(), "training": bench_training(store)}
    print(json.dumps(results["training"]), file=sys.stderr)
    results["scoring"] = bench_scoring(store)
    print(json.dumps(results["scoring"]), file=sys.stderr)
    if not args.skip_table:
        started = time.perf_counter()
        results["table"], results["best"] = evaluation_table(store, args.seeds, args.ablation_seeds, args.log)
        results["table_minutes"] = round((time.perf_counter() - started) / 60, 1)
    print(json.dumps(results, indent=1))
    if args.append:
        with open(ROOT / "bench" / "RESULTS.md", "a", encoding="utf-8") as f:
            t, s = results["training"], results["scoring"]
            f.write(
                f"\n## Multi-task model (bench/bench_model.py, {time.strftime('%Y-%m-%d')})\n\n"
                f"Machine: {results['machine']}. Data: the default demo world ({t['train_rows']} training rows).\n\n"
                f"- Training `{t['arch']}` (the default): {t['seconds']} s in all, {t['epochs']} epochs "
                f"(best {t['best_epoch']}), {t['examples_per_second']} training examples/s (1 thread).\n"
            )
            f.write(
                f"- Scoring {s['candidates']} candidates per request (one torch thread, as `score` runs): "
                f"median {s['median_ms']} ms, p95 {s['p95_ms']} ms, {s['candidates_per_second']} candidates/s.\n"
            )
            f.write(f"- Retrieval query vector: {s['user_vector_ms']} ms.\n")
            if "table" in results:
                f.write(
                    f"\nEvaluation table ({args.seeds} seeds per architecture and for the LightGBM peer, "
                    f"{args.ablation_seeds} per ablation and balancing method, on the best multi-task architecture "
                    f"`{results['best']}`; test = the "
                    f"latest 20% of the log; {results['table_minutes']} min):\n\n"
                )
                f.write(table_markdown(results["table"]) + "\n")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
