"""The gen-ext command: info, check, bench, train and sample."""

import argparse
import ast
import platform
import sys
from pathlib import Path

import torch


def _device(name: str) -> torch.device:
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"gen-ext: --device {name}: CUDA is not available on this machine")
    return device


def cmd_info(args) -> int:
    from gen_ext import __version__, _extension

    info = _extension.build_info()
    print(f"gen_ext {__version__}")
    print(f"python {platform.python_version()}, torch {torch.__version__} "
          f"(CUDA {torch.version.cuda or 'none'})")
    if info is None:
        print("compiled kernels: none (gen_ext._C not built)")
    else:
        print(f"built against: torch {info['torch']}, python {info['python']}")
        cuda = f"CUDA {info['cuda']} for archs {info['cuda_archs']}" if info["cuda"] else "no CUDA"
        if info.get("cuda_reason"):  # builds before build_config.py did not record why
            cuda += f" ({info['cuda_reason']})"
        print(f"compiled kernels: CPU ({', '.join(info['cpu_kernels'])}), {cuda}")
    loaded = _extension.available()
    print(f"extension loaded: {'yes' if loaded else 'no: ' + _extension._load()}")
    if loaded:
        print(f"CPU kernels in use: {torch.ops.gen_ext.cpu_capability()}")
    try:
        import triton

        print(f"triton {triton.__version__} (GPU sampler kernels)")
    except ImportError:
        print("triton: not installed (GPU sampler unavailable)")
    print(f"CPU threads: {torch.get_num_threads()}")
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            cap = torch.cuda.get_device_capability(i)
            print(f"cuda:{i}: {torch.cuda.get_device_name(i)} (sm_{cap[0]}{cap[1]})")
    else:
        print("CUDA devices: none")
    return 0 if loaded else 1


def _print_table(header, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    print(fmt.format(*header))
    print(fmt.format(*("-" * w for w in widths)))
    for row in rows:
        print(fmt.format(*row))


def cmd_check(args) -> int:
    from gen_ext import _extension
    from gen_ext.check import run_checks

    _extension.require()
    rows = run_checks(_device(args.device), args.ops)
    _print_table(["op", "case", "max error", "tolerance", "result", "compared"],
                 [[r.op, r.case, f"{r.max_error:.2e}", f"{r.tolerance:.1e}",
                   "pass" if r.passed else "FAIL", r.detail] for r in rows])
    failed = [r for r in rows if not r.passed]
    print(f"\n{len(rows) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


def cmd_bench(args) -> int:
    from gen_ext import _extension
    from gen_ext.bench import runner

    _extension.require()
    device = _device(args.device)
    load_before = runner.load_average()
    rows = runner.run(device, args.ops, quick=args.quick)
    load_after = runner.load_average()
    info = runner.conditions(device, load=(load_before, load_after))
    print(runner.markdown(rows, info))
    for s in runner.summary(rows):
        parts = [f"{k.replace('_', ' ')} {v:.2f}" for k, v in s.items() if isinstance(v, float)]
        print(f"{s['op']}: " + ", ".join(parts))
    paths = runner.write(rows, info, Path(args.out))
    print("written: " + ", ".join(str(p) for p in paths.values()))
    busy = runner.busy_warning(load_before, load_after, info["threads"])
    if busy:
        print(busy)
    return 0


def cmd_train(args) -> int:
    from gen_ext.train import TrainConfig, train

    out = args.out or f"results/train/{args.model}"
    model_args = {}
    for item in args.set or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"gen-ext train: --set takes KEY=VALUE, got {item!r}")
        try:
            model_args[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            model_args[key] = value  # a bare word, e.g. likelihood=logistic
    cfg = TrainConfig(model=args.model, data=args.data, epochs=args.epochs,
                      batch_size=args.batch_size, lr=args.lr, device=str(_device(args.device)),
                      out=out, seed=args.seed, image_size=args.image_size, model_args=model_args)
    try:
        metrics = train(cfg, resume=args.resume)
    except KeyboardInterrupt:
        print(f"\ninterrupted: the last finished epoch is saved in {out}; continue with --resume",
              file=sys.stderr)
        return 130
    print(f"held-out on {metrics['data']} ({metrics['test_images']} images): " +
          ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                    for k, v in metrics["test"].items()))
    b = metrics.get("baseline", {})
    if "pca_test_mse" in b:
        print(f"PCA with {b['pca_components']} components: test mse {b['pca_test_mse']:.4f}")
    if "histogram_bits_per_dim" in b:
        print(f"baselines: uniform {b['uniform_bits_per_dim']:.4f} bits/dim, per-pixel histogram "
              f"{b['histogram_bits_per_dim']:.4f} bits/dim")
    print(f"written: {out}/metrics.json, " + ", ".join(metrics["pictures"].values()))
    return 0


def cmd_sample(args) -> int:
    from gen_ext.models import GenerativeModel
    from gen_ext.viz import save_grid

    model = GenerativeModel.load(args.checkpoint, map_location=_device(args.device))
    if not model.can_sample:
        raise SystemExit(f"gen-ext sample: {type(model).__name__} has no prior to sample from")
    model.eval()
    generator = torch.Generator(device=_device(args.device)).manual_seed(args.seed)
    path = save_grid(model.sample(args.n, generator).cpu(), args.out)
    print(f"written: {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from gen_ext.bench.cases import CASES
    from gen_ext.check import CHECKS

    parser = argparse.ArgumentParser(prog="gen-ext", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="versions, compiled kernels and devices").set_defaults(fn=cmd_info)
    check = sub.add_parser("check", help="every kernel against its reference on a device")
    check.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    check.add_argument("--ops", nargs="+", choices=sorted(CHECKS), help="only these ops")
    check.set_defaults(fn=cmd_check)
    bench = sub.add_parser("bench", help="fused op vs eager reference vs torch.compile(reference)")
    bench.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    bench.add_argument("--ops", nargs="+", choices=sorted(CASES), help="only these ops")
    bench.add_argument("--quick", action="store_true", help="fewer repetitions")
    bench.add_argument("--out", default="results/bench", help="folder for bench.{json,md,png}")
    bench.set_defaults(fn=cmd_bench)
    from gen_ext.models import MODELS

    train = sub.add_parser("train", help="train a model; checkpoints, metrics and PNGs in --out")
    train.add_argument("model", choices=sorted(MODELS))
    train.add_argument("--data", default="digits",
                       help="digits, rgb-patches, a folder of images or an .npy/.npz file")
    train.add_argument("--epochs", type=int,
                       help="default: the model's own (" + ", ".join(
                           f"{n} {c.default_epochs}" for n, c in MODELS.items()) + ")")
    train.add_argument("--batch-size", type=int, default=64)
    train.add_argument("--lr", type=float, default=1e-3)
    train.add_argument("--device", default="cpu")
    train.add_argument("--out", help="folder for the results (default results/train/MODEL)")
    train.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--image-size", type=int, default=8, help="side of rgb-patches and folder images")
    train.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="a model constructor argument, e.g. --set likelihood=logistic")
    train.set_defaults(fn=cmd_train)
    sample = sub.add_parser("sample", help="draw samples from a checkpoint into a PNG grid")
    sample.add_argument("checkpoint")
    sample.add_argument("-n", type=int, default=64)
    sample.add_argument("--out", default="samples.png")
    sample.add_argument("--device", default="cpu")
    sample.add_argument("--seed", type=int, default=0)
    sample.set_defaults(fn=cmd_sample)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
