"""How live is the embedding projector? Times to the first views and after slider changes.

5,000 STS-B sentences (topped up with captions if needed) are encoded once with the packaged
all-MiniLM-L6-v2 (not timed; cached as .npy). Then each scenario runs in a FRESH Python
process, as a new notebook kernel would, building ``Projector(..., background=True)``:

* import: ``import workbench.widgets`` (plotly's FigureWidget, ipywidgets: once per kernel);
* preview: the constructor returning with the PCA view in the figure (UMAP then runs in a
  thread); sending the figure to a browser is not included;
* first UMAP view: from the constructor's start until the UMAP layout is drawn, so importing
  umap-learn, numba compilation, the kNN graph and the layout all count;
* min_dist change and n_neighbors change: from setting the slider until the new layout is drawn.

Scenarios: without and with ``warm_up_umap(background=True)`` called at the start of the
process (the warm-up runs while the notebook does other work, e.g. encoding; here we wait for
it and report its duration), each with numba's on-disk cache empty (the first kernel ever on an
install: everything compiles) and filled (any later kernel).

    WORKBENCH_DATA=../shared/data python benchmarks/projector.py [--n 5000]

Goals: preview < 1 s, first UMAP view < 20 s, slider change < 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def load_texts(n: int) -> list[str]:
    """``n`` distinct STS-B sentences, topped up with caption sentences when STS-B runs out."""
    from workbench.data import load_caption_pairs, load_stsb

    texts: dict[str, None] = {}
    for split in ("test", "dev", "train"):
        ds = load_stsb(split)
        texts.update(dict.fromkeys(list(ds["sentence1"]) + list(ds["sentence2"])))
    if len(texts) < n:
        ds = load_caption_pairs("train")
        texts.update(dict.fromkeys(ds["anchor"]))
    if len(texts) < n:
        raise SystemExit(f"only {len(texts)} sentences found (the built-in sample?): set WORKBENCH_DATA")
    return list(texts)[:n]


def prepare(n: int, cache: Path) -> tuple[Path, Path]:
    """Encode the texts once (not timed) and keep them next to the embeddings."""
    emb_file, text_file = cache / f"minilm-{n}.npy", cache / f"texts-{n}.json"
    if emb_file.exists() and text_file.exists():
        return emb_file, text_file
    import numpy as np

    from workbench import load_model

    texts = load_texts(n)
    emb = load_model("all-MiniLM-L6-v2").encode(texts, batch_size=64)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(emb_file, emb.astype(np.float32))
    text_file.write_text(json.dumps(texts))
    return emb_file, text_file


def child(emb_file: str, text_file: str, warm_up: bool) -> None:
    """One fresh 'kernel': print a JSON line of timings."""
    start = time.perf_counter()
    result: dict[str, float] = {}
    if warm_up:
        from workbench.projection import warm_up_umap

        thread = warm_up_umap(background=True)
    import numpy as np

    emb = np.load(emb_file)
    texts = json.loads(Path(text_file).read_text())
    t = time.perf_counter()
    from workbench.widgets import Projector

    result["import_widgets_s"] = time.perf_counter() - t
    if warm_up:
        thread.join()
        result["warm_up_s"] = time.perf_counter() - start

    t = time.perf_counter()
    w = Projector(None, texts, embeddings=emb, background=True)
    result["preview_s"] = time.perf_counter() - t
    assert w.shown == "pca", "the preview should be the PCA view"
    w.wait()
    result["first_umap_s"] = time.perf_counter() - t
    assert w.shown == "umap" and not w.errors, w.errors

    def change(control, value) -> float:
        t = time.perf_counter()
        control.value = value
        w.wait()
        assert not w.errors, w.errors
        return time.perf_counter() - t

    result["min_dist_change_s"] = change(w.min_dist, 0.5)
    result["n_neighbors_change_s"] = change(w.n_neighbors, 30)
    result["revisit_cached_s"] = change(w.n_neighbors, 15)  # (15, 0.5) was computed: drawn from the cache
    result["knn_computations"] = w.projection.knn_computations
    result["umap_runs"] = w.umap_runs
    print(json.dumps(result))


def run_child(emb_file: Path, text_file: Path, warm_up: bool, numba_cache: str | None) -> dict[str, float]:
    env = dict(os.environ)
    if numba_cache is not None:
        env["NUMBA_CACHE_DIR"] = numba_cache
    cmd = [sys.executable, __file__, "--child", str(emb_file), str(text_file)] + (
        ["--warm-up"] if warm_up else []
    )
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"child failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "workbench-bench")
    parser.add_argument("--child", nargs=2, metavar=("EMB", "TEXTS"), help=argparse.SUPPRESS)
    parser.add_argument("--warm-up", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child, warm_up=args.warm_up)
        return 0

    emb_file, text_file = prepare(args.n, args.cache)
    import numpy as np

    from workbench.projection import knn_graph, pca

    emb = np.load(emb_file)
    t = time.perf_counter()
    pca(emb, 2)
    pca_s = time.perf_counter() - t
    t = time.perf_counter()
    knn_graph(emb, 50)
    knn_s = time.perf_counter() - t
    print(
        f"{emb.shape[0]} × {emb.shape[1]} embeddings (all-MiniLM-L6-v2); {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (a shared machine: timings are noisy)"
    )
    print(f"core, in this process: pca {pca_s:.2f} s · exact kNN graph (k=50) {knn_s:.2f} s\n")
    header = f"{'scenario':42} {'import':>7} {'preview':>8} {'1st UMAP':>9} {'min_dist':>9} {'n_neigh':>8} {'cached':>7}"
    print(header)
    with tempfile.TemporaryDirectory() as empty:
        scenarios = [
            ("no warm-up, numba cache empty", False, os.path.join(empty, "a")),
            ("warm_up_umap() first, numba cache empty", True, os.path.join(empty, "b")),
            ("no warm-up, numba cache filled", False, None),
            ("warm_up_umap() first, numba cache filled", True, None),
        ]
        for name, warm_up, numba_cache in scenarios:
            r = run_child(emb_file, text_file, warm_up, numba_cache)
            print(
                f"{name:42} {r['import_widgets_s']:6.2f}s {r['preview_s']:7.2f}s {r['first_umap_s']:8.2f}s {r['min_dist_change_s']:8.2f}s "
                f"{r['n_neighbors_change_s']:7.2f}s {r['revisit_cached_s']:6.2f}s"
                + (f"   (warm-up took {r['warm_up_s']:.1f} s in the background)" if warm_up else "")
            )
            assert r["knn_computations"] == 1, r
    print(
        "\nkNN graph computed once per projector in every scenario; goals: preview < 1 s, "
        "first UMAP < 20 s, slider change < 2 s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
