"""Map pipeline at scale: workbench's Projection vs plain umap-learn, side by side, at 5k / 20k / 100k points.

Data: synthetic clustered unit vectors (50 Gaussian centres N(0, 1) in ``--dim`` dimensions, each point a
centre plus N(0, 0.7²) noise per coordinate, normalised), seeded: a speed and memory benchmark, not a quality
one. The data are written to .npy once (not timed); every measurement runs in a FRESH Python process, so
imports and numba's first-use compilation count the way a new kernel meets them, and peak memory
(``ru_maxrss``, the loaded data included) is per run. Before the measurements both pipelines run once on
1,000 points (not reported) so numba's on-disk cache is filled, as on any install after its first layout
(``--cold`` skips that).

* workbench: clock starts after the data are loaded. first view = ``import workbench.projection`` +
  ``Projection(x, max_neighbors=k)`` + ``p.pca(2)`` (the preview the widget shows at once); then
  ``p.knn()`` (exact up to 20,000 points, faiss HNSW above), then layout = ``import_umap()`` +
  ``p.umap(n_neighbors=k)`` (import shown on its own too). total to UMAP = first view + kNN + layout.
* umap-learn: ``import umap`` + ``UMAP(n_neighbors=k, metric="cosine").fit_transform(x)`` (its own
  pynndescent graph, spectral init); it has no preview, so its first view is the layout.

Both layouts are unseeded (multithreaded, as the widget runs them); ``--seed`` seeds the data and the
recall sample. Recall: each graph's k−1 neighbours of 2,000 sampled rows against exact ones (a matmul of
those rows against all points, in this parent process; umap-learn's is n/a below 4,096 points, where
it uses an exact n × n distance matrix instead of pynndescent).

    .venv/bin/python benchmarks/projector_scale.py [--sizes 5000,20000,100000] [--dim 384] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TARGET = "issue target: at 100,000 points the UMAP layout should be ready in <= 90 s on this 2-core CPU"


def make_data(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(50, dim)).astype(np.float32)
    x = centres[rng.integers(0, 50, size=n)] + 0.7 * rng.standard_normal((n, dim), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child(kind: str, data: str, k: int, graph_out: str) -> None:
    x = np.load(data)
    t0 = time.perf_counter()
    r: dict = {}
    if kind == "workbench":
        from workbench.projection import Projection, import_umap

        p = Projection(x, max_neighbors=k)
        p.pca(2)
        r["first_view_s"] = time.perf_counter() - t0
        t = time.perf_counter()
        idx, dist = p.knn()
        r["knn_s"], r["approximate"] = time.perf_counter() - t, p.approximate
        r["graph_bytes"] = int(idx.nbytes + dist.nbytes)
        t = time.perf_counter()
        import_umap()
        r["import_umap_s"] = time.perf_counter() - t
        p.umap(n_neighbors=k)
        r["layout_s"] = time.perf_counter() - t
        assert p.knn_computations == 1
    else:
        import umap

        r["import_umap_s"] = time.perf_counter() - t0
        reducer = umap.UMAP(n_neighbors=k, metric="cosine")
        reducer.fit_transform(x)
        idx = getattr(reducer, "_knn_indices", None)  # umap-learn 0.5.x keeps its graph here
    r["total_s"] = time.perf_counter() - t0
    r["peak_mb"] = _peak_mb()
    if idx is not None:
        np.save(graph_out, np.asarray(idx))
    print("RESULT " + json.dumps(r), flush=True)


def run_child(kind: str, data: Path, k: int, graph_out: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, str(data), str(k), str(graph_out)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{kind} run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def recall(x: np.ndarray, graph: Path, k: int, rows: np.ndarray) -> float | None:
    """Share of the exact k−1 other neighbours of ``rows`` found in the graph's rows (self excluded)."""
    if not graph.exists():
        return None
    idx = np.load(graph)[rows]
    hits = 0
    for start in range(0, len(rows), 250):  # (250, n) scores at a time
        block = rows[start:start + 250]
        scores = x[block] @ x.T
        scores[np.arange(len(block)), block] = -np.inf
        exact = np.argpartition(-scores, k - 1, axis=1)[:, : k - 1]
        for i, r in enumerate(block):
            hits += len(set(exact[i].tolist()) & (set(idx[start + i].tolist()) - {int(r)}))
    return hits / (len(rows) * (k - 1))


def _versions() -> dict:
    out = {"python": platform.python_version(), "numpy": np.__version__}
    for name in ("torch", "umap", "pynndescent", "numba", "faiss"):
        try:
            out[name.replace("umap", "umap-learn")] = __import__(name).__version__
        except ImportError:
            out[name] = "missing"
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5000,20000,100000")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--neighbors", type=int, default=15, help="n_neighbors, counting the point itself")
    parser.add_argument("--seed", type=int, default=0, help="seeds the data and the recall sample")
    parser.add_argument("--recall-rows", type=int, default=2000, help="rows sampled for recall (0: skip)")
    parser.add_argument("--cold", action="store_true", help="do not fill numba's cache before measuring")
    parser.add_argument("--vectors", default=None, help="an (n, d) .npy of real embeddings to use instead of the "
                        "synthetic data (its first rows, normalised), e.g. cached caption embeddings")
    parser.add_argument("--json", default=None, help="also write the figures here")
    parser.add_argument("--child", nargs=4, metavar=("KIND", "DATA", "K", "GRAPH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, data, k, graph = args.child
        child(kind, data, int(k), graph)
        return 0

    sizes = [int(s) for s in args.sizes.split(",")]
    k = args.neighbors
    from workbench.speed import machine_description  # here, not at the top: the children stay as they were

    meta = {"machine": machine_description(), "vectors": args.vectors,
            "load_average": os.getloadavg()[0], **_versions(), "dim": args.dim, "neighbors": k, "seed": args.seed}
    print(TARGET)
    real = None
    if args.vectors:
        real = np.load(args.vectors, mmap_mode="r")
        if max(sizes) > len(real):
            raise SystemExit(f"--vectors {args.vectors} has {len(real):,} rows; --sizes asks for {max(sizes):,}")
        args.dim = real.shape[1]
        print(f"real vectors: the first rows of {args.vectors} ({real.shape[0]:,} × {real.shape[1]}), normalised; "
              f"n_neighbors {k}, cosine")
    else:
        print(f"synthetic, not a quality benchmark: 50 Gaussian centres in {args.dim}-D, noise 0.7, normalised "
              f"(seed {args.seed}); n_neighbors {k}, cosine")
    print(f"{meta['machine']}; load average {meta['load_average']:.1f} (a shared machine: timings are noisy)")
    print(" · ".join(f"{n} {v}" for n, v in meta.items() if n not in ("machine", "load_average", "dim",
                                                                          "neighbors", "seed")))
    print("each run in a fresh process, clock from after loading the data; workbench layout = import_umap() + "
          "p.umap(); total = first view + kNN + layout; umap-learn total = import umap + fit_transform\n",
          flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="projector-scale-") as tmp:
        work = Path(tmp)
        if not args.cold:
            np.save(work / "prime.npy", make_data(1000, args.dim, args.seed))
            for kind in ("workbench", "umap-learn"):
                run_child(kind, work / "prime.npy", k, work / "prime-graph.npy")
        for n in sizes:
            if real is None:
                x = make_data(n, args.dim, args.seed)
            else:
                x = np.array(real[:n], dtype=np.float32)
                x /= np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-12, None)
            np.save(work / "x.npy", x)
            wb = run_child("workbench", work / "x.npy", k, work / "wb.npy")
            ul = run_child("umap-learn", work / "x.npy", k, work / "ul.npy")
            sample = np.sort(np.random.default_rng(args.seed).choice(n, min(args.recall_rows, n), replace=False))
            if len(sample):
                wb["recall"], ul["recall"] = (recall(x, work / g, k, sample) for g in ("wb.npy", "ul.npy"))
            for g in ("wb.npy", "ul.npy"):
                (work / g).unlink(missing_ok=True)
            row = {"size": n, "workbench": wb, "umap_learn": ul, "speed_up": ul["total_s"] / wb["total_s"],
                   "graph_bytes_per_point": wb["graph_bytes"] / n}
            rows.append(row)
            print(f"  {n}: workbench {wb['total_s']:.1f} s, umap-learn {ul['total_s']:.1f} s", flush=True)

    print(f"\n{'size':>7} | {'wb 1st view':>11} | {'wb kNN':>15} | {'wb layout':>18} | {'wb total':>8} | "
          f"{'wb peak MB':>10} | {'umap total':>10} | {'umap peak MB':>12} | {'speed-up':>8}")
    for r in rows:
        wb, ul = r["workbench"], r["umap_learn"]
        kind = "approx" if wb["approximate"] else "exact"
        print(f"{r['size']:>7} | {wb['first_view_s']:>10.2f}s | {wb['knn_s']:>7.2f}s {kind:>7} | "
              f"{wb['layout_s']:>6.2f}s (imp {wb['import_umap_s']:4.1f}) | {wb['total_s']:>7.2f}s | "
              f"{wb['peak_mb']:>10.0f} | {ul['total_s']:>9.2f}s | {ul['peak_mb']:>12.0f} | x{r['speed_up']:>7.2f}")
    print(f"\nkNN graph memory (indices int64 + distances float32, {k} columns): "
          + ", ".join(f"{r['size']}: {r['workbench']['graph_bytes'] / 2**20:.1f} MiB = "
                      f"{r['graph_bytes_per_point']:.0f} B/point" for r in rows)
          + f" (n × k × 12 = {k * 12} B/point)")
    if any("recall" in r["workbench"] for r in rows):
        print(f"recall@{k - 1} on {args.recall_rows} sampled rows vs exact: " + ", ".join(
            f"{r['size']}: workbench {_pct(r['workbench']['recall'])}, umap-learn {_pct(r['umap_learn']['recall'])}"
            for r in rows))
    big = [r for r in rows if r["size"] >= 100_000]
    if big:
        t = big[-1]["workbench"]["total_s"]
        print(f"target (<= 90 s at 100,000 points): {t:.1f} s -> {'met' if t <= 90 else 'NOT met'}")
    if args.json:
        Path(args.json).write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n", encoding="utf-8")
    return 0


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


if __name__ == "__main__":
    raise SystemExit(main())
