"""`scaling bench prepare`, its measuring and reporting half: a child command run while its
process tree's peak RSS is watched, the medians and ratios against the goals of "Data at
corpus scale", and the printed table (scaling/bench/prepare.py runs the benchmark)."""

from __future__ import annotations

import os
import statistics
import subprocess
import threading
import time
from pathlib import Path

from scaling.errors import UserError

C4_MB = 800e3  # ~800 GB of text (C4 en, uncompressed)
DATAFLOW_WORKERS = (100, 500, 1000)
POLL_SECONDS = 0.2
SHELLS = frozenset({"sh", "bash", "dash"})


def descendants(pid: int) -> list[int]:
    """The process ids below `pid` (psutil where installed, else a scan of /proc)."""
    try:
        import psutil
    except ImportError:
        parent = {}
        for name in os.listdir("/proc"):
            try:
                with open(f"/proc/{name}/stat") as f:  # "pid (comm) state ppid ..."
                    parent[int(name)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
        found, frontier = [], [pid]
        while frontier:
            kids = [p for p, pp in parent.items() if pp in frontier]
            found += kids
            frontier = kids
        return found
    try:
        return [c.pid for c in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return []


def peak_kb(pid: int) -> int:
    """The peak resident set (VmHWM) of `pid` in KiB; where /proc has none, its current RSS
    (psutil), so the polled maximum approximates the peak. 0 once it has exited."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    try:
        import psutil

        return psutil.Process(pid).memory_info().rss // 1024
    except Exception:  # psutil missing, or the process is gone
        return 0


def process_name(pid: int) -> str:
    """The executable name of `pid` ("" once it has exited)."""
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        pass
    try:
        import psutil

        return psutil.Process(pid).name()
    except Exception:  # psutil missing, or the process is gone
        return ""


def run_watched(cmd: list[str], log: Path) -> dict:
    """Run `cmd` (output to `log`), polling the peak RSS of it and of its descendants every
    POLL_SECONDS: wall seconds, the launcher's peak, the largest worker's peak (None when it
    started no processes), the worker count, and the kernel's maxrss of the whole tree.
    Shells that only start a worker (Beam's `/bin/sh -c python ...`) are not counted."""
    peaks: dict[int, int] = {}
    names: dict[int, str] = {}
    stop = threading.Event()

    def poll(root: int) -> None:
        while not stop.is_set():
            for pid in [root, *descendants(root)]:
                peaks[pid] = max(peaks.get(pid, 0), peak_kb(pid))
                names[pid] = process_name(pid) or names.get(pid, "")  # "sh" until exec
            stop.wait(POLL_SECONDS)

    with open(log, "wb") as f:
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT)
        watcher = threading.Thread(target=poll, args=(proc.pid,), daemon=True)
        watcher.start()
        _, status, usage = os.wait4(proc.pid, 0)  # the tree's maxrss, unlike proc.wait()
        wall = time.perf_counter() - t
        stop.set()
        watcher.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        tail = log.read_text(errors="replace")[-3000:]
        raise UserError(f"bench prepare: `{' '.join(cmd)}` failed (exit {proc.returncode}):"
                        f"\n{tail}")
    workers = [kb for pid, kb in peaks.items() if pid != proc.pid and names[pid] not in SHELLS]
    return {"wall_s": wall, "launcher_peak_mb": round(peaks.get(proc.pid, 0) / 1024, 1),
            "worker_peak_mb": round(max(workers) / 1024, 1) if workers else None,
            "worker_procs": len(workers), "tree_maxrss_mb": round(usage.ru_maxrss / 1024, 1)}


def work_peak_mb(run: dict) -> float:
    """The peak RSS of the process(es) that tokenized: the largest worker, or the launcher
    itself when it ran the work in-process (one worker)."""
    return run["worker_peak_mb"] if run["worker_peak_mb"] is not None else run[
        "launcher_peak_mb"]


def _median(runs: list[dict], corpus: str, workers: int, key) -> float | None:
    values = [key(r) for r in runs if r["corpus"] == corpus and r["workers"] == workers]
    return statistics.median(values) if values else None


def summarize(runs: list[dict], bare: list[dict], counts: list[int]) -> dict:
    """Medians over rounds per (corpus, workers), the ratios against their goals and the C4
    extrapolation at the per-worker rate of the most workers on the large corpus."""
    sizes = [s for s in ("large", "small") if any(r["corpus"] == s for r in runs)]
    keys = {"mb_per_s": lambda r: r["mb_per_s"], "wall_mb_per_s": lambda r: r["wall_mb_per_s"],
            "tokens_per_s": lambda r: r["tokens_per_s"], "mb": lambda r: r["text_bytes"] / 1e6,
            "launcher_peak_mb": lambda r: r["launcher_peak_mb"], "work_peak_mb": work_peak_mb,
            "build_s": lambda r: r["build_s"]}
    rows = [{"corpus": s, "workers": w, **{k: _median(runs, s, w, f) for k, f in keys.items()}}
            for s in sizes for w in counts]
    cell = {(r["corpus"], r["workers"]): r for r in rows}
    bare_mb = statistics.median(b["mb_per_s"] for b in bare)
    most = max(counts)
    marginal = {w: _marginal(cell["large", w], cell["small", w]) for w in counts
                if "small" in sizes}
    per_worker = {"measured": cell["large", most]["mb_per_s"] / most}
    if marginal.get(most):
        per_worker["marginal"] = marginal[most]["mb_per_s"] / most
    hours = {k: {n: round(C4_MB / (n * rate) / 3600, 2) for n in DATAFLOW_WORKERS}
             for k, rate in per_worker.items()}
    return {"rows": rows, "bare_mb_per_s": bare_mb, "marginal": marginal,
            "bare_tokens_per_s": statistics.median(b["tokens_per_s"] for b in bare),
            "ratios": _ratios(cell, counts, sizes, bare_mb, marginal),
            "per_worker_mb_per_s": per_worker, "from_workers": most, "c4_hours": hours}


def _ratios(cell: dict, counts: list[int], sizes: list[str], bare_mb: float,
            marginal: dict) -> list[dict]:
    """The goals: N workers / 1 worker >= 0.8 N, 1 worker / bare tokenizer >= 0.8 (from
    build.json's rates on the large corpus, and, informative, from the marginal rates), and
    the peak RSS of the working processes, large / small corpus, <= 1.25."""
    ratios = []
    rates = {"large corpus": {w: cell["large", w]["mb_per_s"] for w in counts}}
    if marginal and all(marginal.values()):
        rates["marginal"] = {w: m["mb_per_s"] for w, m in marginal.items()}
    for name, rate in rates.items() if 1 in counts else ():
        ratios += [_ratio(f"{w} workers / 1 worker, MB/s ({name})", rate[w] / rate[1], 0.8 * w)
                   for w in counts if w > 1]
        ratios.append(_ratio(f"1 worker / bare tokenizer, MB/s ({name})", rate[1] / bare_mb,
                             0.8))
    if "small" in sizes:
        ratios += [_ratio(f"peak work RSS large / small corpus, {w} worker(s)",
                          cell["large", w]["work_peak_mb"] / cell["small", w]["work_peak_mb"],
                          1.25, at_most=True) for w in counts]
    return ratios


def _marginal(large: dict, small: dict) -> dict | None:
    """The steady-state rate from the two corpus sizes, (MB_large - MB_small) / (s_large -
    s_small), free of each run's fixed cost (importing Beam, starting workers), and that
    fixed cost in seconds; None when the larger corpus did not take longer."""
    dt = large["build_s"] - small["build_s"]
    if dt <= 0:
        return None
    rate = (large["mb"] - small["mb"]) / dt
    return {"mb_per_s": round(rate, 3), "fixed_s": round(small["build_s"] - small["mb"] / rate,
                                                         2)}


def _ratio(name: str, value: float, goal: float, at_most: bool = False) -> dict:
    met = value <= goal if at_most else value >= goal
    return {"name": name, "value": round(value, 3), "goal": f"{'<=' if at_most else '>='} "
            f"{goal:g}", "met": met}


def print_run(r: dict) -> None:
    workers = (f"{r['worker_procs']} worker process(es), largest {r['worker_peak_mb']:,.0f} MB"
               if r["worker_peak_mb"] is not None else "work in the launcher")
    print(f"round {r['round']} {r['corpus']:5s} x{r['workers']}: {r['text_bytes'] / 1e6:,.1f} "
          f"MB in {r['build_s']:.1f} s (wall {r['wall_s']:.1f} s): {r['mb_per_s']:.2f} MB/s "
          f"({r['wall_mb_per_s']:.2f} by wall), {r['tokens_per_s']:,.0f} tokens/s; peak RSS "
          f"launcher {r['launcher_peak_mb']:,.0f} MB, {workers}", flush=True)


def print_bare(b: dict) -> None:
    print(f"round {b['round']} bare tokenizer (1 thread, large corpus): "
          f"{b['text_bytes'] / 1e6:,.1f} MB in {b['seconds']:.1f} s: {b['mb_per_s']:.2f} MB/s, "
          f"{b['tokens_per_s']:,.0f} tokens/s", flush=True)


def print_summary(s: dict) -> None:
    """The medians table, the ratios against their goals and the C4 extrapolation."""
    print("\nmedians over rounds (MB/s and tokens/s from build.json; wall: the whole command)")
    print(f"{'corpus':7s}{'workers':>8s}{'MB':>9s}{'MB/s':>8s}{'wall MB/s':>10s}"
          f"{'tokens/s':>12s}{'launcher MB':>12s}{'work MB':>9s}")
    for r in s["rows"]:
        print(f"{r['corpus']:7s}{r['workers']:8d}{r['mb']:9.1f}{r['mb_per_s']:8.2f}"
              f"{r['wall_mb_per_s']:10.2f}{r['tokens_per_s']:12,.0f}"
              f"{r['launcher_peak_mb']:12,.0f}{r['work_peak_mb']:9,.0f}")
    print(f"{'bare SentencePiece, 1 thread':36s}{s['bare_mb_per_s']:8.2f}{'':10s}"
          f"{s['bare_tokens_per_s']:12,.0f}")
    print("(work MB: the largest worker process's peak RSS; with 1 worker, the launcher's)\n")
    for r in s["ratios"]:
        print(f"{r['name']}: {r['value']:.3f} (goal {r['goal']}: "
              f"{'met' if r['met'] else 'NOT met'})")
    for w, m in s["marginal"].items():
        print(f"{w} worker(s), from the two sizes: " + (
            f"{m['mb_per_s']:.2f} MB/s at the margin, {m['fixed_s']:.1f} s fixed a run"
            if m else "the larger corpus was not slower (noise): no marginal rate"))
    rate, hours = s["per_worker_mb_per_s"], s["c4_hours"]
    margin = "marginal" in rate
    print(f"\nC4 (~{C4_MB / 1e3:,.0f} GB of text) at {rate['measured']:.2f} MB/s a worker "
          f"(large corpus, {s['from_workers']} worker(s), build.json)"
          + (f" and at the marginal {rate['marginal']:.2f} MB/s" if margin else "")
          + "; linear scaling, no startup or I/O limits assumed:")
    for n, h in hours["measured"].items():
        print(f"  {n:5d} Dataflow workers: {h:,.2f} hours"
              + (f" ({hours['marginal'][n]:,.2f} at the marginal rate)" if margin else ""))
