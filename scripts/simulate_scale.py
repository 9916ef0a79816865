#!/usr/bin/env python3
"""Scale-out model of `edi-anon run`: both schedules, 1 to 4,096 ranks.

Costs come from a real run directory (summary.json and trajectories.csv):

* c       seconds per image evaluation (model forward+backward, selection,
          operator and bookkeeping), from the run's loop time without its
          checkpoint time, over its trajectory rows (one row = one evaluation);
* commit  seconds per shard checkpoint commit (checkpoint time / commits);
* setup   seconds outside the pass loop on rank 0 (start-up, final writes);
* work    per image, the number of evaluations it needed (its trajectory
          rows); for a larger data set, sampled with replacement from them.

The model of the runner (src/cluster/runner.cpp):

* pass-major (the `dataset` rule, and every rule before `--schedule shard`):
  each pass, every rank walks the shard list in index order and claims the
  next unclaimed shard with one MPI fetch-and-op on rank 0 (a failed claim
  costs one round trip too); the pass ends at a barrier and an allreduce;
* shard-major (`image` and `fixed` with `--schedule shard`): a rank claims a
  whole shard and runs all its passes; one final reduction.

Assumed network costs (not measurable on one node; change them with flags):
claim round trip 5 µs, serialised at rank 0 at 1 µs per claim; barrier and
allreduce 5 µs × log2(ranks) each.

  simulate_scale.py calibrate RUN            print the costs taken from RUN
  simulate_scale.py table RUN [--md F] [--plot F]
                                             MTF (5,246) and 1 M images, both
                                             schedules, 1..4,096 ranks
  simulate_scale.py validate RUN1 RUN2 ...   predict each run's wall time from
                                             the costs of the first (1 rank)
                                             and compare with its summary.json
"""
from __future__ import annotations

import argparse
import csv
import heapq
import json
import math
import sys
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Costs:
    c: float              # s per image evaluation
    commit: float         # s per shard commit
    setup: float          # s outside the loop (rank 0)
    claim: float = 5e-6   # s per claim round trip (client side)
    claim_service: float = 1e-6  # s per claim at rank 0 (serialised)
    collective: float = 5e-6     # s per log2(ranks) step of a barrier / allreduce
    commit_every: float = -1.0   # -1: --checkpoint-every auto; 0: a commit per shard and pass; > 0: every that many s of shard work
    max_loss: float = 60.0       # --checkpoint-max-loss
    claim_mode: str = "counter"  # "walk": try every shard in order; "counter": fetch-and-add a shared index, then claim it


@dataclass
class Result:
    wall: float        # time to solution, s
    loop: float        # pass loop (or shard loop) makespan, s
    work: float        # busy seconds summed over ranks
    efficiency: float  # work / (ranks × loop)
    claims: int        # claim attempts


def fail(msg: str) -> None:
    print(f"simulate_scale: {msg}", file=sys.stderr)
    sys.exit(2)


def read_run(run: Path) -> tuple[dict, list[int]]:
    """summary.json and the evaluations per image (trajectory rows)."""
    summary_path, traj_path = run / "summary.json", run / "trajectories.csv"
    for p in (summary_path, traj_path):
        if not p.is_file():
            fail(f"{p}: missing (expected a finished edi-anon run directory)")
    summary = json.loads(summary_path.read_text())
    if "timing" not in summary:
        fail(f"{summary_path}: no 'timing' object (expected an edi-anon run summary)")
    rows: Counter[str] = Counter()
    with traj_path.open(newline="") as f:
        for r in csv.DictReader(f):
            rows[r["id"]] += 1
    if not rows:
        fail(f"{traj_path}: no trajectory rows")
    # Order as the runner shards them: the manifest's (sorted id) order.
    return summary, [rows[i] for i in sorted(rows)]


def commits_for(evals: list[int], shard_size: int) -> int:
    """Commits of a per-pass checkpoint policy: one per shard and pass it ran."""
    return sum(max(evals[i:i + shard_size]) for i in range(0, len(evals), shard_size))


def calibrate(run: Path) -> tuple[Costs, dict]:
    s, evals = read_run(run)
    t = s["timing"]
    ranks = int(s.get("ranks", 1))
    shard_size = int(s["options"].get("shard-size", len(evals)))
    loop_all, ckpt_all = float(t["loop_seconds_all_ranks"]), float(t["checkpoint_seconds_all_ranks"])
    n_eval = sum(evals)
    n_commit = int(t.get("checkpoint_commits_all_ranks") or commits_for(evals, shard_size))
    # The policy the run used (checkpoints/run.json; operational options are not in summary.json).
    policy = {}
    run_json = run / "checkpoints" / "run.json"
    if run_json.is_file():
        policy = json.loads(run_json.read_text()).get("checkpoint_policy", {}) or {}
    if isinstance(policy, str):
        policy = json.loads(policy)
    if policy.get("mode") == "auto":
        every = "auto"
    else:
        every = str(policy.get("every_seconds", policy.get("interval_seconds", 0)))
    costs = Costs(c=(loop_all - ckpt_all) / n_eval, commit=ckpt_all / max(1, n_commit),
                  setup=max(0.0, float(t["seconds"]) - loop_all / ranks),
                  commit_every=-1.0 if every == "auto" else float(every),
                  max_loss=float(policy.get("max_loss_seconds", 60)))
    info = {"run": str(run), "ranks": ranks, "images": len(evals), "evaluations": n_eval,
            "shard_size": shard_size, "commits": n_commit, "wall": float(t["seconds"]),
            "stop": s["options"].get("stop", "?")}
    return costs, info


def shard_tables(evals: np.ndarray, shard_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Per shard: the evaluations it runs in each pass (shards × passes) and its passes."""
    n_shards = math.ceil(len(evals) / shard_size)
    passes = int(evals.max())
    padded = np.zeros(n_shards * shard_size, dtype=np.int64)
    padded[:len(evals)] = evals
    per = padded.reshape(n_shards, shard_size)
    active = (per[:, :, None] > np.arange(passes)[None, None, :]).sum(axis=1)  # shards × passes
    return active, (active > 0).sum(axis=1)


def commit_interval(k: Costs) -> float:
    """Seconds of a shard's work between two commits (0: every pass); the
    auto rule of src/cluster/shard_store.cpp: min(max(sqrt(2 C L), C / 2 %), L)."""
    if k.commit_every >= 0:
        return k.commit_every
    return min(max(math.sqrt(2 * k.commit * k.max_loss), k.commit / 0.02), k.max_loss)


def commit_count(active_row: np.ndarray, k: Costs) -> int:
    """Commits of one shard over its passes under the policy (the last pass always commits)."""
    runs = int((active_row > 0).sum())
    interval = commit_interval(k)
    if interval <= 0:
        return runs
    work = float(active_row.sum()) * k.c
    return min(runs, int(work // interval) + 1)


def list_schedule(costs: np.ndarray, ranks: int, k: Costs) -> tuple[float, int]:
    """Greedy claims in index order by whichever rank is free first; a rank
    pays one claim round trip per shard it finds taken since its last claim.
    Returns the makespan and the claim attempts."""
    free = [(0.0, r, 0) for r in range(ranks)]  # (time, rank, next index it will try)
    heapq.heapify(free)
    nxt, attempts, end = 0, 0, 0.0
    walk = k.claim_mode == "walk"
    for cost in costs:
        t, r, ptr = heapq.heappop(free)
        tries = nxt - ptr + 1 if walk else 2
        attempts += tries
        t += tries * k.claim + float(cost)
        nxt += 1
        heapq.heappush(free, (t, r, nxt))
        end = max(end, t)
    # Every rank walks to the end of the list to learn that nothing is left.
    for t, r, ptr in free:
        tail = nxt - ptr if walk else 1
        attempts += tail
        end = max(end, t + tail * k.claim)
    return end, attempts


def simulate(evals: np.ndarray, ranks: int, shard_size: int, schedule: str, k: Costs) -> Result:
    active, _ = shard_tables(evals, shard_size)
    coll = k.collective * max(1.0, math.log2(ranks)) if ranks > 1 else 0.0
    n_shards, passes = active.shape
    work = float(active.sum()) * k.c
    if schedule == "pass":
        loop, claims = 0.0, 0
        per_commit = k.commit if commit_interval(k) <= 0 else 0.0
        for p in range(passes):
            col = active[:, p]
            costs = col[col > 0] * k.c + per_commit
            span, att = list_schedule(costs, ranks, k)
            loop += max(span, att * k.claim_service) + 2 * coll  # claim-board reset barrier + reduction
            claims += att
        if per_commit == 0.0:
            loop += sum(commit_count(a, k) for a in active) * k.commit / ranks
        commits = sum(commit_count(a, k) for a in active)
    elif schedule == "shard":
        commits_each = np.array([commit_count(a, k) for a in active])
        costs = active.sum(axis=1) * k.c + commits_each * k.commit
        span, claims = list_schedule(costs, ranks, k)
        loop = max(span, claims * k.claim_service) + coll
        commits = int(commits_each.sum())
    else:
        raise ValueError(schedule)
    busy = work + commits * k.commit
    return Result(wall=k.setup + loop, loop=loop, work=busy, efficiency=busy / (ranks * loop) if loop > 0 else 1.0,
                  claims=claims)


def sample_evals(evals: list[int], n: int, seed: int = 0) -> np.ndarray:
    base = np.asarray(evals, dtype=np.int64)
    if n == len(base):
        return base
    return np.random.default_rng(seed).choice(base, size=n, replace=True)


RANKS = [1, 2, 4, 16, 64, 256, 1024, 4096]
SHARD_SIZES = [4, 8, 16, 32, 64, 128, 256, 512]


def best_shard(evals: np.ndarray, ranks: int, schedule: str, k: Costs) -> tuple[int, Result]:
    best = None
    for s in SHARD_SIZES:
        if s > len(evals):
            break
        r = simulate(evals, ranks, s, schedule, k)
        if best is None or r.wall < best[1].wall:
            best = (s, r)
    return best


def cmd_calibrate(a) -> None:
    k, info = calibrate(Path(a.run))
    print(json.dumps({"costs": k.__dict__, "source": info}, indent=1))


def cmd_table(a) -> None:
    k, info = calibrate(Path(a.run))
    k = replace(k, commit_every=a.commit_every, claim_mode=a.claim)  # the run's own policy is not the question here
    lines = [f"Costs from `{info['run']}` ({info['images']} images, `--stop {info['stop']}`, "
             f"{info['ranks']} rank(s)): {k.c * 1e3:.2f} ms per image evaluation, "
             f"{k.commit * 1e3:.2f} ms per commit, set-up {k.setup:.2f} s; claim {k.claim * 1e6:.0f} µs "
             f"(rank 0 serves one per {k.claim_service * 1e6:.0f} µs), collectives {k.collective * 1e6:.0f} µs × log2(ranks); "
             + ("a commit per shard and pass" if commit_interval(k) <= 0 else
                f"a commit per {commit_interval(k):.2f} s of shard work (--checkpoint-every {'auto' if k.commit_every < 0 else format(k.commit_every, 'g')})")
             + f"; claims by {'a shared counter' if k.claim_mode == 'counter' else 'a walk over every shard'}.",
             "",
             "| images | ranks | schedule | best --shard-size | time to solution | parallel efficiency | idle share | at --shard-size 16 |",
             "|---|---|---|---|---|---|---|---|"]
    curves: dict[tuple[str, int], list[tuple[int, float]]] = {}
    for n in a.images:
        evals = sample_evals(info_evals(a.run), n)
        for ranks in RANKS:
            if ranks > n:
                continue
            for schedule in ("pass", "shard"):
                s, r = best_shard(evals, ranks, schedule, k)
                r16 = simulate(evals, ranks, 16, schedule, k)
                lines.append(f"| {n:,} | {ranks:,} | {schedule}-major | {s} | {fmt_time(r.wall)} | "
                             f"{100 * r.efficiency:.1f} % | {100 * (1 - r.efficiency):.1f} % | "
                             f"{fmt_time(r16.wall)}, {100 * r16.efficiency:.1f} % |")
                curves.setdefault((schedule, n), []).append((ranks, r.efficiency))
    text = "\n".join(lines)
    print(text)
    if a.md:
        Path(a.md).write_text(text + "\n")
    if a.plot:
        plot(curves, Path(a.plot))


def info_evals(run: str) -> list[int]:
    return read_run(Path(run))[1]


def fmt_time(s: float) -> str:
    if s >= 3600:
        return f"{s / 3600:.2f} h"
    if s >= 60:
        return f"{s / 60:.1f} min"
    return f"{s:.2f} s"


def plot(curves, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for (schedule, n), pts in sorted(curves.items()):
        xs, ys = zip(*pts)
        ax.plot(xs, [100 * y for y in ys], marker="o", linestyle="-" if schedule == "shard" else "--",
                label=f"{schedule}-major, {n:,} images")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("ranks")
    ax.set_ylabel("parallel efficiency (%)")
    ax.set_ylim(0, 105)
    ax.grid(alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    ax.set_title("simulated, best --shard-size per point", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    fig.savefig(path.with_suffix(".pdf"))


def cmd_validate(a) -> None:
    runs = [Path(r) for r in a.runs]
    k, info = calibrate(runs[0])
    if info["ranks"] != 1:
        fail(f"{runs[0]}: the first run must be a 1-rank run (it has {info['ranks']})")
    print(f"calibrated on {runs[0]}: c = {k.c * 1e3:.3f} ms, commit = {k.commit * 1e3:.3f} ms, setup = {k.setup:.3f} s")
    print("| run | ranks | schedule | cores | predicted s | measured s | error |")
    print("|---|---|---|---|---|---|---|")
    worst = 0.0
    for run in runs:
        s, evals = read_run(run)
        ranks = int(s.get("ranks", 1))
        run_json = Path(run) / "checkpoints" / "run.json"  # the schedule the run used (operational: not in summary.json)
        recorded = json.loads(run_json.read_text()).get("schedule") if run_json.is_file() else None
        schedule = s.get("schedule") or recorded or s["options"].get("schedule", "pass")
        if schedule == "auto":
            schedule = "shard" if s["options"].get("stop") in ("image", "fixed") else "pass"
        shard = int(s["options"].get("shard-size", len(evals)))
        # More ranks than cores share them: each rank runs at cores/ranks speed.
        slow = max(1.0, ranks * int(s["options"].get("threads", 1) or 1) / a.cores)
        kk = replace(k, c=k.c * slow, commit=k.commit * slow)
        r = simulate(np.asarray(evals), ranks, shard, schedule, kk)
        measured = float(s["timing"]["seconds"])
        err = (r.wall - measured) / measured
        worst = max(worst, abs(err))
        print(f"| {run} | {ranks} | {schedule} | {a.cores} | {r.wall:.2f} | {measured:.2f} | {100 * err:+.1f} % |")
    print(f"worst error {100 * worst:.1f} % (target within 15 %)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("calibrate")
    c.add_argument("run")
    t = sub.add_parser("table")
    t.add_argument("run")
    t.add_argument("--images", type=int, nargs="+", default=[5246, 1_000_000])
    t.add_argument("--commit-every", type=float, default=-1.0,
                   help="s of shard work per commit (-1: --checkpoint-every auto, the default; 0: every pass)")
    t.add_argument("--claim", choices=["counter", "walk"], default="counter",
                   help="claim board: a shared counter (today's runner) or a walk over every shard (before it)")
    t.add_argument("--md")
    t.add_argument("--plot")
    v = sub.add_parser("validate")
    v.add_argument("runs", nargs="+")
    v.add_argument("--cores", type=int, default=2)
    a = ap.parse_args()
    {"calibrate": cmd_calibrate, "table": cmd_table, "validate": cmd_validate}[a.cmd](a)


if __name__ == "__main__":
    main()
