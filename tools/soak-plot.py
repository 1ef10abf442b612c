#!/usr/bin/env python3
"""Draws the CSV of make soak as one PNG: goroutines, resident memory, open
files and BI latency over time, one panel each."""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(src, dst):
    with open(src, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        sys.exit(f"{src}: no samples")
    t = [float(r["seconds"]) / 60 for r in rows]
    panels = [
        ("goroutines", [float(r["goroutines"]) for r in rows], None),
        ("resident memory (MiB)", [float(r["rss_mib"]) for r in rows], None),
        ("open files", [float(r["open_fds"]) for r in rows], None),
        ("BI query latency (ms)", [float(r["bi_p50_ms"]) for r in rows], [float(r["bi_p99_ms"]) for r in rows]),
    ]
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 9), sharex=True)
    for ax, (title, ys, ys2) in zip(axes, panels):
        ax.plot(t, ys, label="p50" if ys2 else None)
        if ys2:
            ax.plot(t, ys2, label="p99")
            ax.legend(loc="upper right")
        ax.set_ylabel(title)
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
    axes[-1].set_xlabel("minutes")
    failed = sum(int(r["failed"]) for r in rows)
    fig.suptitle(f"pgpseudo soak: {t[-1]:.0f} min of mixed load, {failed} failed statements")
    fig.tight_layout()
    fig.savefig(dst, dpi=90)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
