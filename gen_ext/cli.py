"""The gen-ext command: info, check, bench, train and sample.

Every error the user can cause is one line on stderr, `gen-ext COMMAND: what was wrong`: exit 2
for a bad command line (argparse's usage errors and the checks below), 1 for a failure on the way
(bad data, a bad checkpoint, a missing extension), 130 on Ctrl-C.
"""

import argparse
import contextlib
import inspect
import math
import platform
import sys
import warnings
from pathlib import Path

import torch

from gen_ext.errors import CheckpointError, GenExtError, one_line

# constructor arguments `gen-ext train` derives from the data itself
SET_BY_TRAIN = ("input_shape", "levels")


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line (argparse prints the usage first); the
    subcommands' parsers are of this class too, as add_subparsers makes them of the parent's."""

    def error(self, message):
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends "(default: X)" to every option's help, except where the help already says what a
    missing value means (defaults of None, which would print as "None")."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default is None or "default" in text:
            return text
        return super()._get_help_string(action)


# --- argument types: each raises ArgumentTypeError, which argparse reports naming the flag ----


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text!r}")
    return value


def device_type(name: str) -> torch.device:
    """A device that exists on this machine: cpu, cuda[:N] (N below the device count) or mps."""
    try:
        device = torch.device(name)
    except RuntimeError:
        raise argparse.ArgumentTypeError(
            f"expected cpu, cuda, cuda:N or mps, got {name!r}"
        ) from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise argparse.ArgumentTypeError(f"{name}: CUDA is not available on this machine")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise argparse.ArgumentTypeError(
                f"{name}: this machine has {count} CUDA device{'s' * (count != 1)} "
                f"(cuda:0 to cuda:{count - 1})"
            )
        return device
    if device.type == "mps":
        if not torch.backends.mps.is_available():
            raise argparse.ArgumentTypeError(f"{name}: MPS is not available on this machine")
        return device
    raise argparse.ArgumentTypeError(f"expected cpu, cuda, cuda:N or mps, got {name!r}")


def checkpoint_file(text: str) -> Path:
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(
            f"{text} is a folder; give the checkpoint file in it (e.g. {path / 'checkpoint.pt'})"
        )
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text}: no such checkpoint file")
    return path


def png_file(text: str) -> Path:
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(
            f"{text} is a folder; give a file name such as {path / 'samples.png'}"
        )
    if path.suffix.lower() != ".png":
        raise argparse.ArgumentTypeError(f"expected a file name ending in .png, got {text!r}")
    return path


# --- --set KEY=VALUE: typed by the model's constructor ----------------------------------------


def _settable_parameters(cls) -> dict[str, inspect.Parameter]:
    """The constructor's named arguments (a **kwargs catch-all accepts nothing by name)."""
    return {
        name: p
        for name, p in inspect.signature(cls).parameters.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }


def _value_type(param: inspect.Parameter):
    """The type a value for `param` must have: its annotation where it is a plain type, else the
    type of its default, else str."""
    if param.annotation is not param.empty and isinstance(param.annotation, type):
        return param.annotation
    if param.default is not inspect.Parameter.empty and param.default is not None:
        return type(param.default)
    return str


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise ValueError(f"expected true, false, 1 or 0, got {text!r}")


def _parse_int_sequence(text: str, kind: type) -> tuple | list:
    inner = text.strip().removeprefix("(").removesuffix(")").removeprefix("[").removesuffix("]")
    try:
        values = [int(part) for part in inner.split(",") if part.strip()]
    except ValueError:
        raise ValueError(
            f"expected integers separated by commas, e.g. 1,8,8, got {text!r}"
        ) from None
    if not values:
        raise ValueError(f"expected integers separated by commas, e.g. 1,8,8, got {text!r}")
    return kind(values)


def parse_value(text: str, kind: type):
    """`text` as a value of `kind`: int, float, bool, str, or a tuple/list of ints; ValueError
    naming what was expected otherwise."""
    if kind is bool:
        return _parse_bool(text)
    if kind in (tuple, list):
        return _parse_int_sequence(text, kind)
    if kind is int:
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"expected an integer, got {text!r}") from None
    if kind is float:
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"expected a number, got {text!r}") from None
    return text


def parse_model_args(model: str, cls, items: list[str]) -> dict:
    """The --set KEY=VALUE items as constructor arguments of `cls`, each parsed to the type of
    the argument; ValueError with one line naming the item and the valid keys otherwise."""
    params = _settable_parameters(cls)
    valid = [name for name in params if name not in SET_BY_TRAIN]
    keys = f"valid keys for {model}: {', '.join(valid)}"
    model_args = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}; {keys}")
        if key in SET_BY_TRAIN:
            raise ValueError(f"--set {item}: gen-ext train sets {key} from the data itself; {keys}")
        if key not in params:
            raise ValueError(f"--set {item}: {model} has no argument {key!r}; {keys}")
        kind = _value_type(params[key])
        try:
            model_args[key] = parse_value(text, kind)
        except ValueError as err:
            raise ValueError(f"--set {item}: {key} takes {kind.__name__}: {err}; {keys}") from None
    return model_args


def show_progress() -> bool:
    """Progress bars only where someone watches: a bar redrawn with \\r garbles a log file."""
    return sys.stderr.isatty()


@contextlib.contextmanager
def one_line_warnings(prog: str):
    """Warnings of gen_ext's own classes (e.g. a notice that data was quantized) print as one
    line, `gen-ext COMMAND: warning: ...`, instead of Python's two lines with a file and source
    line; other warnings print as usual."""
    original = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if category.__module__.split(".")[0] == "gen_ext":
            print(f"{prog}: warning: {one_line(message, limit=None)}", file=file or sys.stderr)
        else:
            original(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = original


# --- the commands --------------------------------------------------------------------------


def cmd_info(args) -> int:
    from gen_ext import __version__, _extension

    info = _extension.build_info()
    print(f"gen_ext {__version__}")
    print(
        f"python {platform.python_version()}, torch {torch.__version__} "
        f"(CUDA {torch.version.cuda or 'none'})"
    )
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
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    print(fmt.format(*header))
    print(fmt.format(*("-" * w for w in widths)))
    for row in rows:
        print(fmt.format(*row))


def cmd_check(args) -> int:
    from gen_ext import _extension
    from gen_ext.check import run_checks

    _extension.require()
    rows = run_checks(args.device, args.ops, progress=show_progress())
    _print_table(
        ["op", "case", "max error", "tolerance", "result", "compared"],
        [
            [
                r.op,
                r.case,
                f"{r.max_error:.2e}",
                f"{r.tolerance:.1e}",
                "pass" if r.passed else "FAIL",
                r.detail,
            ]
            for r in rows
        ],
    )
    failed = [r for r in rows if not r.passed]
    print(f"\n{len(rows) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


def bench_cases(args) -> list[str]:
    """The case names `gen-ext bench` runs: those named by --ops and --models, else --suite's."""
    from gen_ext.bench import runner

    named = (args.ops or []) + (args.models or [])
    if named and args.suite is not None:
        args.parser.error("--suite: pass a suite or case names (--ops, --models), not both")
    return named or list(runner.SUITES[args.suite or runner.DEFAULT_SUITE])


def cmd_bench(args) -> int:
    from gen_ext import _extension
    from gen_ext.bench import runner
    from gen_ext.bench.inductor_cache import keep_inductor_cache_per_capability
    from gen_ext.cpu_memory import keep_freed_cpu_memory

    _extension.require()
    # as `gen-ext train` does, for every implementation alike (gen_ext/cpu_memory.py)
    keep_freed_cpu_memory()
    # torch.compile's graphs from a run at another ATEN_CPU_CAPABILITY must not be reused here
    keep_inductor_cache_per_capability()
    if args.suite == "sampling":
        return bench_sampling(args)
    load_before = runner.load_average()
    rows = runner.run(args.device, bench_cases(args), quick=args.quick)
    load_after = runner.load_average()
    info = runner.conditions(args.device, load=(load_before, load_after))
    print(runner.markdown(rows, info))
    for s in runner.summary(rows):
        parts = [f"{k.replace('_', ' ')} {v:.2f}" for k, v in s.items() if isinstance(v, float)]
        parts += [
            f"{impl}: wrong result ({why})" for impl, why in s.get("wrong_results", {}).items()
        ]
        print(f"{s['op']}: " + ", ".join(parts))
    paths = runner.write(rows, info, Path(args.out))
    print("written: " + ", ".join(str(p) for p in paths.values()))
    busy = runner.busy_warning(load_before, load_after, info["threads"])
    if busy:
        print(busy)
    return 0


def bench_sampling(args) -> int:
    """`gen-ext bench --suite sampling`: the cached samplers against the naive ones."""
    from gen_ext.bench import runner, sampling

    load_before = runner.load_average()
    rows = []
    for name in sampling.SIZES:
        print(f"sampling: {name} ...", file=sys.stderr, flush=True)
        rows.append(sampling.measure(name, sampling.SIZES, args.device, args.quick))
    info = runner.conditions(args.device, load=(load_before, runner.load_average()))
    text = sampling.markdown(rows, runner.conditions_line(info))
    print(text)
    paths = sampling.write(rows, info, text, Path(args.out))
    print("written: " + ", ".join(str(p) for p in paths.values()))
    busy = runner.busy_warning(load_before, runner.load_average(), info["threads"])
    if busy:
        print(busy)
    return 0


def cmd_train(args) -> int:
    from gen_ext.train import TrainConfig, train

    out = args.out or f"results/train/{args.model}"
    cfg = TrainConfig(
        model=args.model,
        data=args.data,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        device=str(args.device),
        out=out,
        seed=args.seed,
        image_size=args.image_size,
        clip_length=args.clip_length,
        model_args=args.model_args,
        early_stop=args.early_stop,
    )
    try:
        metrics = train(cfg, resume=args.resume, overwrite=args.overwrite)
    except KeyboardInterrupt:
        print(
            f"gen-ext train: interrupted; the last finished epoch is saved in {out}, continue "
            f"with --resume",
            file=sys.stderr,
        )
        return 130
    unit = "clips" if model_data_kind(args.model) == "audio" else "images"
    print(
        f"held-out on {metrics['data']} ({metrics['test_images']} {unit}): "
        + ", ".join(
            f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
            for k, v in metrics["test"].items()
        )
    )
    b = metrics.get("baseline", {})
    if "pca_test_mse" in b:
        print(f"PCA with {b['pca_components']} components: test mse {b['pca_test_mse']:.4f}")
    if "histogram_bits_per_dim" in b:
        print(
            f"baselines: uniform {b['uniform_bits_per_dim']:.4f} bits/dim, per-pixel histogram "
            f"{b['histogram_bits_per_dim']:.4f} bits/dim"
        )
    if "histogram_bits_per_sample" in b:
        print(
            f"baselines: uniform {b['uniform_bits_per_sample']:.4f} bits/sample, histogram "
            f"of the levels {b['histogram_bits_per_sample']:.4f} bits/sample"
        )
    q = metrics.get("sample_quality")
    if q:
        print(
            f"sample quality of {q['samples']} samples against the held-out digits: Fréchet "
            f"distance {q['frechet_distance']:.2f}, precision {q['precision']:.3f}, recall "
            f"{q['recall']:.3f}, coverage {q['coverage']:.1f}"
            + (" (mode collapse)" if q["collapsed"] else "")
        )
    stop = metrics.get("early_stop")
    if stop and stop["best_epoch"] is not None:
        print(
            f"early stop: {'stopped; ' if stop['stopped_early'] else ''}best epoch "
            f"{stop['best_epoch']}, whose model is reported and kept in {out}/best.pt"
        )
    print(f"written: {out}/metrics.json, " + ", ".join(metrics["pictures"].values()))
    return 0


def model_defaults(attribute: str, spec: str = "") -> str:
    """Each `gen-ext train` model's own default of a setting, for --help: "vae 100, ..."."""
    from gen_ext.models import MODELS

    return ", ".join(f"{n} {getattr(c, attribute):{spec}}" for n, c in MODELS.items())


def model_data_kind(name: str) -> str:
    from gen_ext.models import MODELS

    return MODELS[name].data_kind


def cmd_sample(args) -> int:
    from gen_ext.models import AutoregressiveImageModel, GenerativeModel

    # a file that is no usable checkpoint raises CheckpointError, printed as one line by main()
    model = GenerativeModel.load(args.checkpoint, map_location=args.device)
    name = type(model).__name__
    if not model.can_sample:
        raise CheckpointError(f"{args.checkpoint}: {name} has no prior to sample from")
    if args.length is not None and model.data_kind != "audio":
        raise GenExtError(f"--length: {name} draws images of a fixed size; it is for sound")
    model.eval()
    generator = torch.Generator(device=args.device).manual_seed(args.seed)
    fast = not args.naive
    if (
        args.naive
        and not model.has_fast_sampler
        and not isinstance(model, AutoregressiveImageModel)
    ):
        raise GenExtError(
            f"--naive: {name} draws its samples in one pass; it has no cached and naive samplers"
        )
    if fast and not model.has_fast_sampler and isinstance(model, AutoregressiveImageModel):
        print(f"gen-ext sample: {name} has no fast sampler yet; sampling naively", file=sys.stderr)
    options = {} if args.length is None else {"length": args.length}
    if model.has_fast_sampler:
        options["fast"] = fast
    samples = model.sample(args.n, generator, progress=show_progress(), **options).cpu()
    try:
        paths = model.write_samples(samples, args.out)
    except OSError as err:
        raise GenExtError(f"--out {args.out}: cannot write ({err.strerror or err})") from err
    print(f"written: {', '.join(map(str, paths))}")
    return 0


def cmd_receptive_field(args) -> int:
    from gen_ext.models import MODELS
    from gen_ext.receptive_field import (
        draw_receptive_field,
        earlier_sub_pixels,
        receptive_field,
    )

    size, C = args.size, args.channels
    pixel = tuple(args.pixel) if args.pixel is not None else (size // 2, size // 2)
    if not all(0 <= v < size for v in pixel):
        args.parser.error(f"--pixel {pixel[0]} {pixel[1]}: must lie in the {size}x{size} image")
    torch.manual_seed(args.seed)
    try:
        model = MODELS[args.model](input_shape=(C, size, size), levels=17)
    except ValueError as err:  # a colour image needs channel counts the default config lacks
        raise GenExtError(f"{args.model} at --channels {C}: {err}") from err
    field = receptive_field(model, pixel, seed=args.seed)
    groups = field.shape[0]
    allowed = earlier_sub_pixels((C, size, size), groups, pixel)
    seen, may = int(field.sum()), int(allowed.sum())
    missed = int((allowed & ~field).sum())
    per = f" (summed over its {groups} output colours)" if groups > 1 else ""
    title = (
        f"{args.model}, untrained, {C}x{size}x{size}: output pixel {pixel} sees {seen} of "
        f"the {may} earlier sub-pixel inputs{per}"
    )
    try:
        path = draw_receptive_field(field, pixel, args.out, title)
    except OSError as err:
        raise GenExtError(f"--out {args.out}: cannot write ({err.strerror or err})") from err
    print(title + (f"; blind spot: {missed} it may see but does not" if missed else ""))
    if (field & ~allowed).any():  # never expected: every model is causal by construction
        raise GenExtError(f"{args.model}: output {pixel} depends on inputs it may not see")
    print(f"written: {path}")
    return 0


# --- the parser ----------------------------------------------------------------------------

DEVICE_HELP = "cpu, cuda, cuda:N or mps; refused if this machine lacks it"


def _subcommand(sub, name: str, help: str, fn):
    parser = sub.add_parser(
        name, help=help, description=help, formatter_class=DefaultsHelpFormatter
    )
    parser.set_defaults(fn=fn, parser=parser)
    return parser


def build_parser() -> argparse.ArgumentParser:
    from gen_ext.bench.cases import CASES
    from gen_ext.bench.model_cases import MODEL_CASES
    from gen_ext.bench.runner import DEFAULT_SUITE, REPETITIONS, SUITES
    from gen_ext.check import CHECKS
    from gen_ext.models import MODELS

    parser = OneLineParser(
        prog="gen-ext", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _subcommand(sub, "info", "versions, compiled kernels and devices", cmd_info)

    check = _subcommand(sub, "check", "every kernel against its reference on a device", cmd_check)
    check.add_argument("--device", type=device_type, default="cpu", help=DEVICE_HELP)
    check.add_argument(
        "--ops",
        nargs="+",
        choices=sorted(CHECKS),
        metavar="OP",
        help=f"only these ops (default: all of {', '.join(sorted(CHECKS))})",
    )

    bench = _subcommand(
        sub,
        "bench",
        "fused ops and models vs eager reference vs torch.compile(reference)",
        cmd_bench,
    )
    bench.add_argument("--device", type=device_type, default="cpu", help=DEVICE_HELP)
    bench.add_argument(
        "--suite",
        choices=sorted([*SUITES, "sampling"]),
        help=f"ops: every op case; models: a training and a sampling step of every model "
        f"family at its documented size (minutes: torch.compile of the larger models takes "
        f"long); all: both; sampling: the cached samplers against the naive ones, in samples "
        f"per second (a few minutes) (default: {DEFAULT_SUITE}, unless --ops or --models name "
        f"cases)",
    )
    bench.add_argument(
        "--ops",
        nargs="+",
        choices=sorted(CASES),
        metavar="OP",
        help=f"only these op cases, of {', '.join(sorted(CASES))} (default: those of --suite)",
    )
    bench.add_argument(
        "--models",
        nargs="+",
        choices=sorted(MODEL_CASES),
        metavar="MODEL",
        help=f"only these model cases, of {', '.join(sorted(MODEL_CASES))} (default: those of "
        "--suite)",
    )
    reps = ", ".join(
        f"{kind}s {REPETITIONS[kind, True][0]}+{REPETITIONS[kind, True][1]} instead of "
        f"{REPETITIONS[kind, False][0]}+{REPETITIONS[kind, False][1]}"
        for kind in ("op", "model")
    )
    bench.add_argument(
        "--quick",
        action="store_true",
        help=f"fewer repetitions (warm-up + timed calls after the first call: {reps})",
    )
    bench.add_argument("--out", default="results/bench", help="folder for bench.{json,md,png}")

    train = _subcommand(
        sub, "train", "train a model; checkpoints, metrics and PNGs in --out", cmd_train
    )
    train.add_argument("model", choices=sorted(MODELS), help="the model to train")
    train.add_argument(
        "--data",
        help="images: digits, rgb-patches, a folder of images or an .npy/.npz file; sound: "
        "synthetic or a folder of WAV files (default: the model's own: "
        + model_defaults("default_data")
        + ")",
    )
    train.add_argument(
        "--epochs",
        type=positive_int,
        help="default: the model's own (" + model_defaults("default_epochs") + ")",
    )
    train.add_argument(
        "--batch-size",
        type=positive_int,
        help="images (or clips) per step (default: the model's own: "
        + model_defaults("default_batch_size")
        + ")",
    )
    train.add_argument(
        "--lr",
        type=positive_float,
        help="learning rate (default: the model's own: " + model_defaults("default_lr", "g") + ")",
    )
    train.add_argument(
        "--early-stop",
        type=positive_int,
        metavar="EPOCHS",
        help="stop when the held-out main metric (a GAN's: the Fréchet distance) has not improved "
        "for EPOCHS epochs, and keep the best epoch's model (best.pt; its samples and metrics "
        "are reported; default: every epoch runs)",
    )
    train.add_argument("--device", type=device_type, default="cpu", help=DEVICE_HELP)
    train.add_argument("--out", help="folder for the results (default: results/train/MODEL)")
    start = train.add_mutually_exclusive_group()
    start.add_argument(
        "--resume", action="store_true", help="continue from the checkpoint in --out"
    )
    start.add_argument(
        "--overwrite", action="store_true", help="start afresh even if --out holds an earlier run"
    )
    train.add_argument("--seed", type=int, default=0, help="seed of the weights and data order")
    train.add_argument(
        "--image-size", type=positive_int, default=8, help="side of rgb-patches and folder images"
    )
    train.add_argument(
        "--clip-length",
        type=positive_int,
        default=1024,
        help="samples per clip of sound data (wavenet)",
    )
    train.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a model constructor argument, e.g. --set likelihood=logistic; "
        "repeat for more (default: the model's own; "
        f"{' and '.join(SET_BY_TRAIN)} come from the data)",
    )

    sample = _subcommand(
        sub,
        "sample",
        "draw samples from a checkpoint into a PNG grid (sound: a waveform PNG and a WAV)",
        cmd_sample,
    )
    sample.add_argument(
        "checkpoint",
        type=checkpoint_file,
        help="a checkpoint file, e.g. results/train/MODEL/checkpoint.pt",
    )
    sample.add_argument("-n", type=positive_int, default=64, help="number of samples")
    sample.add_argument(
        "--out",
        type=png_file,
        default="samples.png",
        help="the PNG (a model of sound also writes the WAV beside it, ending in .wav)",
    )
    sample.add_argument(
        "--naive",
        action="store_true",
        help="the reference sampler: the whole network for every new sample (otherwise the fast "
        "sampler, with per-layer caches, where the model has one)",
    )
    sample.add_argument(
        "--length",
        type=positive_int,
        help="samples per waveform, for models of sound (default: the training clip length)",
    )
    sample.add_argument("--device", type=device_type, default="cpu", help=DEVICE_HELP)
    sample.add_argument("--seed", type=int, default=0, help="seed of the sampler's generator")

    from gen_ext.receptive_field import has_receptive_field

    autoregressive = [n for n, c in MODELS.items() if has_receptive_field(c)]
    field = _subcommand(
        sub,
        "receptive-field",
        "draw which inputs one output pixel of an untrained model depends on (exact gradients)",
        cmd_receptive_field,
    )
    field.add_argument("model", choices=sorted(autoregressive), help="the model")
    field.add_argument(
        "--pixel",
        nargs=2,
        type=int,
        metavar=("I", "J"),
        help="row and column of the output pixel (default: the centre)",
    )
    field.add_argument("--size", type=positive_int, default=12, help="side of the square image")
    field.add_argument("--channels", type=int, choices=(1, 3), default=1, help="colour channels")
    field.add_argument(
        "--out", type=png_file, default="receptive_field.png", help="the PNG picture"
    )
    field.add_argument("--seed", type=int, default=0, help="seed of the weights and images")
    return parser


def _check_model_args(args) -> None:
    """--set is typed by the model named before it, so it is checked after parsing, and a bad
    item is a usage error like argparse's own."""
    from gen_ext.models import MODELS

    try:
        args.model_args = parse_model_args(args.model, MODELS[args.model], args.set)
    except ValueError as err:
        args.parser.error(str(err))


def main(argv=None) -> int:
    from gen_ext._extension import ExtensionNotAvailable

    prog = "gen-ext"
    try:
        args = build_parser().parse_args(argv)
        prog = f"gen-ext {args.command}"
        if args.command == "train":
            _check_model_args(args)
        with one_line_warnings(prog):
            return args.fn(args)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except (GenExtError, ExtensionNotAvailable) as err:
        print(f"{prog}: {one_line(err, limit=None)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
