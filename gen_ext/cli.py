"""The gen-ext command: info, check and bench."""

import argparse
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
    rows = runner.run(device, args.ops, quick=args.quick)
    info = runner.conditions(device)
    print(runner.markdown(rows, info))
    for s in runner.summary(rows):
        parts = [f"{k.replace('_', ' ')} {v:.2f}" for k, v in s.items() if isinstance(v, float)]
        print(f"{s['op']}: " + ", ".join(parts))
    paths = runner.write(rows, info, Path(args.out))
    print("written: " + ", ".join(str(p) for p in paths.values()))
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
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
