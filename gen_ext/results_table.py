"""Prints the README's tables of held-out results from the metrics.json files that `gen-ext train`
wrote (default: every folder under results/train): one row per run, then the likelihood models'
bits/dim per dataset next to the uniform and per-pixel histogram baselines.

    python -m gen_ext.results_table [results/train]
"""

import json
import math
import sys
from pathlib import Path


def row(m: dict) -> str:
    t = m["test"]
    cfg = m["config"]
    if "bits_per_dim" in t:
        b = m["baseline"]
        return (
            f"| {m['model']} | {m['data']} | {m['epochs']} | {t['bits_per_dim']:.3f} bits/dim | "
            f"uniform {b['uniform_bits_per_dim']:.3f}, histogram "
            f"{b['histogram_bits_per_dim']:.3f} bits/dim | {m['seconds_this_run']:.0f} s |"
        )
    if "bits_per_sample" in t:
        b = m["baseline"]
        return (
            f"| {m['model']} | {m['data']} | {m['epochs']} | {t['bits_per_sample']:.3f} "
            f"bits/sample | uniform {b['uniform_bits_per_sample']:.3f}, histogram of the levels "
            f"{b['histogram_bits_per_sample']:.3f} bits/sample | {m['seconds_this_run']:.0f} s |"
        )
    if "mse" in t:
        base = m.get("baseline")
        pca = f"{base['pca_test_mse']:.4f} ({base['pca_components']} comp.)" if base else "n/a"
        extra = f"corrupted input: {t['corrupted_mse']:.4f}" if "corrupted_mse" in t else ""
        return (
            f"| {m['model']} | {m['data']} | {m['epochs']} | test MSE {t['mse']:.4f} | "
            f"PCA {pca} | {extra} |"
        )
    bits = math.prod(cfg["input_shape"]) * math.log(2)  # nats per image -> bits per dimension
    per_dim = f"{t['neg_elbo'] / bits:.3f} bits/dim" if cfg["likelihood"] == "logistic" else ""
    return (
        f"| {m['model']} ({cfg['likelihood']}) | {m['data']} | {m['epochs']} | "
        f"-ELBO {t['neg_elbo']:.2f} nats | -IW bound (k={t['iw_samples']}) "
        f"{t['neg_iw_bound']:.2f} nats | KL {t['kl']:.2f} nats {per_dim} |"
    )


def likelihood_table(runs: list[dict]) -> list[str]:
    """Held-out bits/dim, one row per model and the two baselines, one column per dataset."""
    runs = [m for m in runs if "bits_per_dim" in m["test"]]
    datasets = sorted({m["data"] for m in runs}, key=lambda d: (d != "digits", d))
    if not runs:
        return []
    lines = [
        "| held-out bits/dim | " + " | ".join(datasets) + " |",
        "|---" * (len(datasets) + 1) + "|",
    ]
    for label, key in (
        ("uniform", "uniform_bits_per_dim"),
        ("per-pixel histogram (add-one)", "histogram_bits_per_dim"),
    ):
        cells = [
            next((f"{m['baseline'][key]:.3f}" for m in runs if m["data"] == d), "")
            for d in datasets
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    for model in dict.fromkeys(m["model"] for m in runs):
        cells = [
            next(
                (
                    f"{m['test']['bits_per_dim']:.3f} ({m['epochs']} epochs, "
                    f"{m['seconds_this_run']:.0f} s)"
                    for m in runs
                    if m["model"] == model and m["data"] == d
                ),
                "",
            )
            for d in datasets
        ]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return lines


def main(root="results/train") -> None:
    runs = [json.loads(path.read_text()) for path in sorted(Path(root).glob("*/metrics.json"))]
    print("| model | data | epochs | held-out | baseline / bound | notes |")
    print("|---|---|---|---|---|---|")
    for m in runs:
        print(row(m))
    table = likelihood_table(runs)
    if table:
        print()
        print("\n".join(table))


if __name__ == "__main__":
    main(*sys.argv[1:])
