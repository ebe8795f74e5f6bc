"""Prints the README's tables of held-out results from the metrics.json files that `gen-ext train`
wrote (default: every folder under results/train): one row per run, then the likelihood models'
bits/dim per dataset next to the uniform and per-pixel histogram baselines, then the sample
quality of every model that samples digits next to held-out real digits and a one-class set.

    python -m gen_ext.results_table [results/train [SAMPLES.png]]

With a second argument it also draws a row of samples of each of those models into that PNG.
"""

import json
import math
import sys
from pathlib import Path


def run_name(m: dict) -> str:
    likelihood = m["config"].get("likelihood")
    name = f"{m['model']} ({likelihood})" if likelihood else m["model"]
    stop = m.get("early_stop")
    if stop and stop.get("best_epoch") is not None:
        name += f", early stop: epoch {stop['best_epoch']}"
    return name


def row(m: dict) -> str:
    t = m["test"]
    cfg = m["config"]
    if "frechet_distance" in t:
        return (
            f"| {m['model']} | {m['data']} | {m['epochs']} | Fréchet {t['frechet_distance']:.1f}, "
            f"precision {t['precision']:.2f}, recall {t['recall']:.2f} | coverage "
            f"{t['coverage']:.1f}{', collapsed' if t['collapsed'] else ''} | "
            f"{m['seconds_this_run']:.0f} s |"
        )
    held_out = [k for k in t if k.startswith("held_out_")]
    if held_out:  # a GAN on images the digit classifier does not know
        values = ", ".join(f"{k.removeprefix('held_out_')} {t[k]:.4f}" for k in held_out)
        return (
            f"| {m['model']} | {m['data']} | {m['epochs']} | discriminator's held-out "
            f"{values} | no sample-quality metric for these images | "
            f"{m['seconds_this_run']:.0f} s |"
        )
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


def _quality_cells(q: dict) -> str:
    return (
        f"{q['frechet_distance']:.1f} | {q['precision']:.2f} | {q['recall']:.2f} | "
        f"{q['coverage']:.1f} | {q['class_entropy']:.2f} | {'yes' if q['collapsed'] else 'no'}"
    )


def scored_runs(runs: list[dict]) -> list[dict]:
    """The runs that scored their samples on the digits, best Fréchet distance first."""
    return sorted(
        (m for m in runs if "sample_quality" in m),
        key=lambda m: m["sample_quality"]["frechet_distance"],
    )


def quality_table(runs: list[dict], references: dict | None = None) -> list[str]:
    """Sample quality of every run that scored its samples on the digits, best Fréchet distance
    first, under the reference sets {label: sample_quality result}."""
    runs = scored_runs(runs)
    if not runs:
        return []
    lines = [
        "| samples (1,000 per model) | Fréchet | precision | recall | coverage | class entropy "
        "| collapsed | epochs, time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, q in (references or {}).items():
        lines.append(f"| {label} | {_quality_cells(q)} | |")
    for m in runs:
        lines.append(
            f"| {run_name(m)} | {_quality_cells(m['sample_quality'])} | "
            f"{m.get('epochs_run', m['epochs'])}, {m['seconds_this_run']:.0f} s |"
        )
    return lines


def quality_references() -> dict:
    """The yardsticks of the quality table: the training digits (a generator that samples the
    data itself) and the training 3s (a generator collapsed onto one class)."""
    from gen_ext.data import load
    from gen_ext.metrics import real_baseline, sample_quality

    data = load("digits")
    threes = data.train[data.train_labels == 3]
    return {
        f"real: the {data.train.shape[0]:,} training digits": real_baseline(),
        f"one class: the {threes.shape[0]} training 3s": sample_quality(threes, data.test),
    }


SAMPLES_PER_ROW = 12


def samples_picture(root, path, runs: list[dict]) -> Path:
    """One PNG comparing the families: a row of samples (seed 0) from each run that scored its
    samples on the digits, in the order of the quality table, labelled with the run's name."""
    import torch

    from gen_ext.models import GenerativeModel
    from gen_ext.viz import save_grid

    rows, labels = [], []
    for m in scored_runs(runs):
        folder = Path(root) / m["folder"]
        best = folder / "best.pt"
        model = GenerativeModel.load(best if best.is_file() else folder / "checkpoint.pt").eval()
        with torch.no_grad():
            rows.append(model.sample(SAMPLES_PER_ROW, torch.Generator().manual_seed(0)).cpu())
        labels.append(run_name(m))
    return save_grid(torch.cat(rows), path, columns=SAMPLES_PER_ROW, row_labels=labels)


def main(root="results/train", picture=None) -> None:
    runs = [
        {**json.loads(path.read_text()), "folder": path.parent.name}
        for path in sorted(Path(root).glob("*/metrics.json"))
    ]
    print("| model | data | epochs | held-out | baseline / bound | notes |")
    print("|---|---|---|---|---|---|")
    for m in runs:
        print(row(m))
    table = likelihood_table(runs)
    if table:
        print()
        print("\n".join(table))
    if any("sample_quality" in m for m in runs):
        print()
        print("\n".join(quality_table(runs, quality_references())))
        if picture:
            print(f"\nwritten: {samples_picture(root, picture, runs)}")


if __name__ == "__main__":
    main(*sys.argv[1:])
