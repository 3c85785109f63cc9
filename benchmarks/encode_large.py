"""Large-corpus encoding: peak memory at 50k, 100k and 200k sentences, and kill + resume.

Builds a corpus of sentences from the shared data (Wikipedia, other English sentences, the
five Multi30k captions of each image, SNLI; repeated if more are asked for than there are),
writes it as one text per line, and encodes prefixes of it with ``encode_corpus`` and
all-MiniLM-L6-v2, each size in a fresh process whose peak resident memory (VmHWM) is read at
the end, and whose resident memory is sampled after every chunk. If memory is bounded, neither
grows with the corpus; the output .npy (which does) lives on disk. Then the largest size is run
again, SIGKILLed from outside after some chunks are on disk, and run once more: the resumed run
must encode only the rest, and its file must equal the uninterrupted run's (and a sample of
rows a plain ``model.encode`` of the same texts).

    WORKBENCH_DATA=../shared/data python benchmarks/encode_large.py \\
        [--sizes 50000,100000,200000] [--max-seq-length 64] [--kill-after 12] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def _status_kib(pid: int | str, field: str) -> int:
    """A memory figure from /proc/PID/status, in KiB (VmHWM: peak resident set; VmRSS: now)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _peak_kib() -> int:
    if Path("/proc/self/status").exists():
        return _status_kib("self", "VmHWM")
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


# ----- the corpus ----------------------------------------------------------------------------------
def build_corpus(data: Path, n: int) -> tuple[list[str], int]:
    """``n`` sentences from the shared data, interleaving the sources, repeated when there are fewer;
    and how many of them are distinct."""
    from workbench.data.files import read_records

    sources: list[list[str]] = []
    for path, columns in [
        (data / "wikipedia-sentences" / "wikipedia-sentences.tsv", ["sentence"]),
        (data / "misc-english-sentences" / "sentences.tsv", ["sentence"]),
        (data / "multi30k-captions" / "captions-train.tsv", [f"caption{i}" for i in range(1, 6)]),
        (data / "snli" / "snli-dev-triplets.tsv", None),
    ]:
        if not path.is_file():
            continue
        records = read_records(path)
        names = columns or [c for c in records.columns if c not in ("label", "score")]
        texts = [t.strip() for name in names for t in records.data[name]]
        sources.append([t for t in dict.fromkeys(texts) if t])
    if not sources:
        raise SystemExit(f"no sentences found under {data}; set WORKBENCH_DATA to a folder laid out like shared/data")
    mixed = [t for group in _interleave(sources) for t in group]
    unique = list(dict.fromkeys(mixed))
    return [unique[i % len(unique)] for i in range(n)], len(unique)


def _interleave(sources: list[list[str]]) -> list[list[str]]:
    """Round-robin, one sentence from each source in turn (so every prefix has a similar mix)."""
    longest = max(len(s) for s in sources)
    return [[s[i] for s in sources if i < len(s)] for i in range(longest)]


# ----- one run, in its own process -------------------------------------------------------------------
def child(args: argparse.Namespace) -> int:
    import torch

    from workbench import load_model
    from workbench.corpus import encode_corpus

    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_model(args.model, device="cpu")
    model.max_seq_length = args.max_seq_length
    loaded_kib = _status_kib("self", "VmRSS")
    peak_kib = _peak_kib()  # so far: loading the model
    per_chunk = _reset_peak()  # with it, the peak inside each chunk can be read on its own
    rss_by_chunk: list[int] = []  # resident memory (KiB) after each chunk this run encoded
    peak_by_chunk: list[int] = []  # the highest resident memory while encoding it

    def sample(event) -> None:
        nonlocal peak_kib
        if event.encoded:
            rss_by_chunk.append(_status_kib("self", "VmRSS"))
            peak_by_chunk.append(_peak_kib())
            peak_kib = max(peak_kib, peak_by_chunk[-1])
            if per_chunk:
                _reset_peak()

    result = encode_corpus(model, args.source, args.out, chunk_size=args.chunk_size, batch_size=args.batch_size,
                           progress=False, callbacks=[sample])
    print("RESULT " + json.dumps({"rows": result.rows, "encoded": result.encoded, "reused": result.reused,
                                  "seconds": result.seconds, "peak_kib": max(peak_kib, _peak_kib()),
                                  "loaded_kib": loaded_kib, "rss_by_chunk": rss_by_chunk,
                                  "peak_by_chunk": peak_by_chunk if per_chunk else [],
                                  "threads": torch.get_num_threads()}), flush=True)
    return 0


def _reset_peak() -> bool:
    """Start VmHWM over from the current resident size (Linux: ``5`` into /proc/self/clear_refs)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _child_cmd(args: argparse.Namespace, source: Path, out: Path) -> list[str]:
    return [sys.executable, __file__, "--child", "--source", str(source), "--out", str(out), "--model", args.model,
            "--max-seq-length", str(args.max_seq_length), "--chunk-size", str(args.chunk_size),
            "--batch-size", str(args.batch_size), "--threads", str(args.threads)]


def _curve(r: dict) -> str:
    """Resident memory after the model was loaded and after chunks 1, 1/4, 1/2 and the last (flat when
    bounded), and the peak inside each chunk: over the first and the last quarter of the chunks."""
    rss = r.get("rss_by_chunk") or []
    if not rss:
        return ""
    picks = sorted({0, len(rss) // 4, len(rss) // 2, len(rss) - 1})
    text = (f"RSS loaded {r['loaded_kib'] / 1024:.0f} MiB, after chunk "
            + ", ".join(f"{i + 1}: {rss[i] / 1024:.0f}" for i in picks) + " MiB")
    peaks = r.get("peak_by_chunk") or []
    if len(peaks) >= 4:
        q = len(peaks) // 4
        first, last = peaks[:q], peaks[-q:]
        text += (f"; peak inside a chunk: first {q} chunks {min(first) / 1024:.0f}-{max(first) / 1024:.0f} MiB, "
                 f"last {q} chunks {min(last) / 1024:.0f}-{max(last) / 1024:.0f} MiB")
    return text


def _run(cmd: list[str]) -> dict:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def _run_and_kill(cmd: list[str], progress: Path, after_chunks: int) -> tuple[int, int, float]:
    """Start a run, SIGKILL it once ``after_chunks`` chunks are on disk; (chunks on disk, peak KiB, seconds)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = 0
    while proc.poll() is None:
        try:
            done = len(json.loads(progress.read_text())["done"])
        except (OSError, ValueError, KeyError):
            done = 0
        peak = max(peak, _status_kib(proc.pid, "VmHWM"))
        if done >= after_chunks:
            os.kill(proc.pid, signal.SIGKILL)  # mid-chunk, most likely: that chunk is lost and redone
            proc.wait()
            break
        time.sleep(0.2)
    else:
        raise SystemExit(f"the run ended before {after_chunks} chunks were written:\n{proc.stderr.read()[-3000:]}")
    return len(json.loads(progress.read_text())["done"]), peak, time.perf_counter() - t0


# ----- the benchmark -------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50000,100000,200000")
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--max-seq-length", type=int, default=64, help="tokens per text (the model allows 256)")
    parser.add_argument("--chunk-size", type=int, default=4096)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--kill-after", type=int, default=12,
                        help="then run the largest size again and SIGKILL it after this many chunks (0: skip)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run (0: torch's default)")
    parser.add_argument("--workdir", default=None, help="where the corpus and outputs go (default: a temp folder)")
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--source", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)

    import tempfile

    import torch

    sizes = sorted(int(s) for s in args.sizes.split(","))
    data = Path(os.environ.get("WORKBENCH_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="encode-large-"))
    work.mkdir(parents=True, exist_ok=True)
    corpus, unique = build_corpus(data, sizes[-1])
    for n in sizes:
        (work / f"corpus-{n}.txt").write_text("".join(t + "\n" for t in corpus[:n]), encoding="utf-8")
    print(f"corpus: {sizes[-1]} sentences ({unique} unique, from {data}), in {work}")
    print(f"all-MiniLM-L6-v2 at max_seq_length={args.max_seq_length}, chunk {args.chunk_size}, batch "
          f"{args.batch_size}, {args.threads or torch.get_num_threads()} thread(s) per run; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores\n", flush=True)

    rows = []
    for n in sizes:  # each size uninterrupted, in a fresh process
        for stale in _outputs(work / f"emb-{n}.npy"):
            stale.unlink(missing_ok=True)
        r = _run(_child_cmd(args, work / f"corpus-{n}.txt", work / f"emb-{n}.npy"))
        rows.append({"size": n, "run": "full", **r})
        print(f"  {n}: {r['encoded']} encoded in {r['seconds']:.0f}s, peak RSS {r['peak_kib'] / 1024:.0f} MiB; "
              f"{_curve(r)}", flush=True)

    if args.kill_after <= 0:
        return _report(rows, sizes, args, unique, None)
    n = sizes[-1]  # the largest again, killed and resumed
    out = work / f"emb-{n}-resumed.npy"
    for stale in _outputs(out):
        stale.unlink(missing_ok=True)
    cmd = _child_cmd(args, work / f"corpus-{n}.txt", out)
    chunks, killed_peak, killed_s = _run_and_kill(cmd, out.with_name(out.name + ".progress.json"), args.kill_after)
    on_disk = min(chunks * args.chunk_size, n)
    print(f"  {n}: SIGKILLed after {killed_s:.0f}s with {chunks} chunks ({on_disk} texts) on disk", flush=True)
    r = _run(cmd)
    rows.append({"size": n, "run": "killed", "encoded": on_disk, "seconds": killed_s, "peak_kib": killed_peak})
    rows.append({"size": n, "run": "resumed", **r})
    print(f"  {n}: resumed: {r['encoded']} encoded, {r['reused']} found on disk, in {r['seconds']:.0f}s, "
          f"peak RSS {r['peak_kib'] / 1024:.0f} MiB; {_curve(r)}", flush=True)
    if r["reused"] != on_disk or r["encoded"] + r["reused"] != n:
        raise SystemExit(f"resume re-encoded finished chunks: {r}")

    # the file is right: a sample of rows against a plain encode
    from workbench import load_model

    model = load_model(args.model, device="cpu")
    model.max_seq_length = args.max_seq_length
    pick = np.sort(np.random.default_rng(0).choice(n, size=256, replace=False))
    emb = np.load(out, mmap_mode="r")
    diff = float(np.abs(emb[pick] - model.encode([corpus[i] for i in pick])).max())
    print(f"  {n}: 256 random rows of the resumed file vs model.encode: max abs diff {diff:.1e}")
    if diff > 1e-5:
        raise SystemExit("the resumed file differs from model.encode")
    whole = np.load(work / f"emb-{n}.npy", mmap_mode="r")  # the uninterrupted run of the same texts
    diff_whole = max(float(np.abs(emb[a:a + 8192] - whole[a:a + 8192]).max()) for a in range(0, n, 8192))
    print(f"  {n}: every row of the resumed file vs the uninterrupted run: max abs diff {diff_whole:.1e}\n")
    if diff_whole > 1e-5:
        raise SystemExit("the resumed file differs from the uninterrupted one")
    return _report(rows, sizes, args, unique, {"chunks": chunks, "on_disk": on_disk, "resumed": r, "diff": diff,
                                                  "diff_whole": diff_whole})


def _outputs(out: Path) -> tuple[Path, Path, Path]:
    return out, out.with_name(out.name + ".partial"), out.with_name(out.name + ".progress.json")


def _report(rows: list[dict], sizes: list[int], args: argparse.Namespace, unique: int, kill: dict | None) -> int:
    print(f"{'sentences':>10} {'run':>8} {'encoded':>8} {'on disk':>8} {'seconds':>8} {'texts/s':>8} "
          f"{'peak RSS MiB':>13} {'output MiB':>11}")
    for row in rows:
        reused = row.get("reused", 0)
        rate = row["encoded"] / row["seconds"] if row["seconds"] else 0.0
        print(f"{row['size']:>10} {row['run']:>8} {row['encoded']:>8} {reused:>8} {row['seconds']:>8.0f} "
              f"{rate:>8.0f} {row['peak_kib'] / 1024:>13.0f} {row['size'] * 384 * 4 / 2**20:>11.0f}")
    if kill is not None:
        r = kill["resumed"]
        print(f"\nkilled run: {kill['on_disk']} texts ({kill['chunks']} chunks) on disk when SIGKILLed; the chunk in "
              f"flight was lost. Resumed run: {r['encoded']} of {sizes[-1]} texts encoded, {r['reused']} read back "
              f"from disk (digest-checked).")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "kill": kill, "unique": unique,
                                               "max_seq_length": args.max_seq_length}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
