"""Prints the README's table of held-out results from the metrics.json files that `gen-ext train`
wrote (default: every folder under results/train).

    python benchmarks/train_table.py [results/train]
"""

import json
import math
import sys
from pathlib import Path


def row(m: dict) -> str:
    t = m["test"]
    cfg = m["config"]
    if "mse" in t:
        base = m.get("baseline")
        pca = f"{base['pca_test_mse']:.4f} ({base['pca_components']} comp.)" if base else "n/a"
        extra = f"corrupted input: {t['corrupted_mse']:.4f}" if "corrupted_mse" in t else ""
        return (f"| {m['model']} | {m['data']} | {m['epochs']} | test MSE {t['mse']:.4f} | "
                f"PCA {pca} | {extra} |")
    bits = math.prod(cfg["input_shape"]) * math.log(2)  # nats per image -> bits per dimension
    per_dim = f"{t['neg_elbo'] / bits:.3f} bits/dim" if cfg["likelihood"] == "logistic" else ""
    return (f"| {m['model']} ({cfg['likelihood']}) | {m['data']} | {m['epochs']} | "
            f"-ELBO {t['neg_elbo']:.2f} nats | -IW bound (k={t['iw_samples']}) "
            f"{t['neg_iw_bound']:.2f} nats | KL {t['kl']:.2f} nats {per_dim} |")


def main(root="results/train") -> None:
    print("| model | data | epochs | held-out | baseline / bound | notes |")
    print("|---|---|---|---|---|---|")
    for path in sorted(Path(root).glob("*/metrics.json")):
        print(row(json.loads(path.read_text())))


if __name__ == "__main__":
    main(*sys.argv[1:])
