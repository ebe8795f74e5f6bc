"""The gen-ext command's edges: every error the user can cause is one line on stderr naming the
argument (exit 2 for a bad command line, 1 for a failure such as bad data or a bad checkpoint,
130 on Ctrl-C), never a traceback; --help shows every default; long work shows progress."""

import argparse
import inspect
import warnings

import pytest
import torch

import gen_ext.train
from gen_ext import _extension, check, cli, errors
from gen_ext.cli import main, parse_model_args
from gen_ext.models import MODELS, VAE, Autoencoder, PixelCNN, PixelCNNPlusPlus


def run_cli(argv, capsys) -> tuple[int, list[str]]:
    """(exit code, stderr lines) of `gen-ext argv` run in this process."""
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    return code, capsys.readouterr().err.splitlines()


def assert_one_line(capsys, argv, code, *names):
    got, lines = run_cli(argv, capsys)
    assert got == code, lines
    assert len(lines) == 1, lines
    for name in names:
        assert name in lines[0], lines
    return lines[0]


@pytest.fixture
def checkpoint_path(tmp_path):
    """Any existing file passes the command line's check; its content is loaded later."""
    path = tmp_path / "model.pt"
    path.write_bytes(b"")
    return path


# --- 1. numeric options must be positive --------------------------------------------------


@pytest.mark.parametrize(
    "flag,value",
    [
        ("--epochs", "0"),
        ("--epochs", "-3"),
        ("--epochs", "2.5"),
        ("--batch-size", "0"),
        ("--batch-size", "many"),
        ("--lr", "0"),
        ("--lr", "-1e-3"),
        ("--lr", "nan"),
        ("--lr", "inf"),
        ("--image-size", "0"),
    ],
)
def test_train_numbers_must_be_positive(capsys, flag, value):
    # FLAG=VALUE: argparse would read a lone -1e-3 as an option
    line = assert_one_line(
        capsys, ["train", "vae", f"{flag}={value}"], 2, f"argument {flag}", value
    )
    assert line.startswith("gen-ext train: ")


def test_sample_n_must_be_positive(capsys, checkpoint_path):
    assert_one_line(capsys, ["sample", str(checkpoint_path), "-n", "0"], 2, "argument -n", "0")


# --- 2. --set is typed by the model's constructor -----------------------------------------


class ToyModel:
    def __init__(
        self,
        input_shape=(1, 8, 8),
        levels: int = 17,
        width: int = 4,
        rate: float = 0.5,
        flag: bool = False,
        name: str = "a",
        sizes=(1, 2),
        **extra,
    ):
        pass


def test_set_values_take_the_constructor_argument_types():
    items = ["width=3", "rate=1e-2", "flag=true", "name=b", "sizes=3,4"]
    got = parse_model_args("toy", ToyModel, items)
    assert got == {"width": 3, "rate": 0.01, "flag": True, "name": "b", "sizes": (3, 4)}
    assert type(got["rate"]) is float and type(got["sizes"]) is tuple
    assert parse_model_args("toy", ToyModel, ["flag=0", "sizes=(5, 6, 7)"]) == {
        "flag": False,
        "sizes": (5, 6, 7),
    }


@pytest.mark.parametrize(
    "item,expected",
    [
        ("width=3.5", "expected an integer"),
        ("rate=fast", "expected a number"),
        ("flag=yes", "true, false, 1 or 0"),
        ("sizes=a,b", "integers separated by commas"),
    ],
)
def test_set_value_of_the_wrong_type_is_refused(item, expected):
    with pytest.raises(ValueError, match=expected) as info:
        parse_model_args("toy", ToyModel, [item])
    assert f"--set {item}" in str(info.value)
    assert "valid keys for toy: width, rate, flag, name, sizes" in str(info.value)


def test_train_passes_typed_set_values(monkeypatch, tmp_path, capsys):
    calls = []

    def fake_train(cfg, **kwargs):
        calls.append(cfg)
        raise errors.TrainingError("stopped by the test")

    monkeypatch.setattr(gen_ext.train, "train", fake_train)
    assert_one_line(
        capsys,
        [
            "train",
            "vae",
            "--out",
            str(tmp_path),
            "--set",
            "hidden=32",
            "--set",
            "likelihood=logistic",
        ],
        1,
        "stopped by the test",
    )
    assert calls[0].model_args == {"hidden": 32, "likelihood": "logistic"}


@pytest.mark.parametrize(
    "item,names",
    [
        ("bottleneck=4", ["no argument 'bottleneck'"]),
        ("hidden=wide", ["--set hidden=wide", "int", "'wide'"]),
        ("hidden", ["KEY=VALUE", "'hidden'"]),
    ],
)
def test_train_bad_set_is_a_usage_error_listing_the_keys(capsys, item, names):
    assert_one_line(
        capsys,
        ["train", "vae", "--set", item],
        2,
        *names,
        "valid keys for vae: hidden, latent_dim, likelihood, iw_samples",
    )


@pytest.mark.parametrize("key", ["input_shape", "levels"])
def test_train_refuses_set_of_what_it_derives_from_the_data(capsys, key):
    assert_one_line(
        capsys,
        ["train", "pixelcnn", "--set", f"{key}=3"],
        2,
        f"gen-ext train sets {key} from the data",
    )


# --- 3. a device this machine lacks is refused at start -------------------------------------


def _device_argv(command, device, tmp_path):
    return {
        "check": ["check"],
        "bench": ["bench", "--quick"],
        "train": ["train", "vae"],
        "sample": ["sample", str(tmp_path / "missing.pt")],
    }[command] + ["--device", device]


@pytest.mark.parametrize("command", ["check", "bench", "train", "sample"])
@pytest.mark.parametrize(
    "device,message",
    [
        ("foo", "expected cpu, cuda, cuda:N or mps, got 'foo'"),
        ("cuda:3", "cuda:3"),
        ("mps", "mps: MPS is not available"),
    ],
)
def test_missing_device_is_refused(capsys, tmp_path, command, device, message):
    if device == "cuda:3" and torch.cuda.device_count() > 3:
        pytest.skip("this machine has a cuda:3")
    if device == "mps" and torch.backends.mps.is_available():
        pytest.skip("this machine has MPS")
    # argparse checks the checkpoint before --device, so `sample` gets a file that exists
    argv = _device_argv(command, device, tmp_path)
    if command == "sample":
        (tmp_path / "missing.pt").write_bytes(b"")
    assert_one_line(capsys, argv, 2, "argument --device", message)


def test_cuda_device_index_beyond_the_count_names_the_count():
    if not torch.cuda.is_available():
        with pytest.raises(argparse.ArgumentTypeError, match="CUDA is not available"):
            cli.device_type("cuda")
        pytest.skip("no CUDA here for the index check")
    count = torch.cuda.device_count()
    with pytest.raises(argparse.ArgumentTypeError, match=f"has {count} CUDA device"):
        cli.device_type(f"cuda:{count}")
    assert cli.device_type(f"cuda:{count - 1}") == torch.device("cuda", count - 1)


# --- 4. files, data, checkpoints, the extension: one line each ------------------------------


def test_missing_checkpoint(capsys, tmp_path):
    path = tmp_path / "nope.pt"
    assert_one_line(
        capsys,
        ["sample", str(path)],
        2,
        "argument checkpoint",
        str(path),
        "no such checkpoint file",
    )


def test_folder_given_for_the_checkpoint(capsys, tmp_path):
    assert_one_line(
        capsys,
        ["sample", str(tmp_path)],
        2,
        "argument checkpoint",
        "is a folder",
        str(tmp_path / "checkpoint.pt"),
    )


def test_folder_given_for_the_png(capsys, tmp_path, checkpoint_path):
    assert_one_line(
        capsys,
        ["sample", str(checkpoint_path), "--out", str(tmp_path)],
        2,
        "argument --out",
        "is a folder",
    )


def test_out_that_is_not_a_png(capsys, checkpoint_path, tmp_path):
    assert_one_line(
        capsys,
        ["sample", str(checkpoint_path), "--out", str(tmp_path / "s.jpg")],
        2,
        "argument --out",
        ".png",
        "s.jpg",
    )


@pytest.mark.parametrize("content", [b"", b"not a checkpoint", "dict", "list"])
def test_bad_checkpoint_content(capsys, tmp_path, content):
    path = tmp_path / "bad.pt"
    if content == "dict":
        torch.save({"weights": torch.zeros(2)}, path)
    elif content == "list":
        torch.save([1, 2], path)
    else:
        path.write_bytes(content)
    # the file, then what was expected of it
    assert_one_line(capsys, ["sample", str(path)], 1, "gen-ext sample: ", str(path), "expected")


def test_checkpoint_of_another_shape(capsys, tmp_path):
    """load_state_dict's message spans lines; it is printed as one."""
    path = tmp_path / "vae.pt"
    ckpt = VAE(hidden=8).checkpoint()
    ckpt["config"]["hidden"] = 16
    torch.save(ckpt, path)
    assert_one_line(capsys, ["sample", str(path)], 1, str(path), "size mismatch")


def test_checkpoint_of_a_model_without_a_prior(capsys, tmp_path):
    path = tmp_path / "ae.pt"
    Autoencoder(hidden=8, bottleneck=2).save(path)
    assert_one_line(
        capsys, ["sample", str(path)], 1, str(path), "Autoencoder has no prior to sample from"
    )


def test_bad_data_is_one_line(capsys, tmp_path):
    missing = tmp_path / "images.npy"
    assert_one_line(
        capsys,
        ["train", "vae", "--data", str(missing), "--out", str(tmp_path / "out")],
        1,
        "gen-ext train: ",
        str(missing),
    )


def test_missing_extension_is_one_line(capsys, monkeypatch):
    monkeypatch.setattr(_extension, "_failure", "gen_ext._C has not been built. Build it.")
    assert_one_line(capsys, ["check"], 1, "gen-ext check: gen_ext._C has not been built")


def test_overwrite_reaches_train(monkeypatch, tmp_path, capsys):
    calls = []

    def fake_train(cfg, **kwargs):
        calls.append(kwargs)
        raise errors.TrainingError(f"{cfg.out} holds an earlier run")

    monkeypatch.setattr(gen_ext.train, "train", fake_train)
    argv = ["train", "vae", "--out", str(tmp_path)]
    assert_one_line(capsys, argv, 1, "gen-ext train: ", "holds an earlier run")
    assert_one_line(capsys, [*argv, "--overwrite"], 1, "holds an earlier run")
    assert calls == [{"resume": False, "overwrite": False}, {"resume": False, "overwrite": True}]


def test_resume_and_overwrite_exclude_each_other(capsys):
    assert_one_line(
        capsys, ["train", "vae", "--resume", "--overwrite"], 2, "--overwrite", "--resume"
    )


# --- warnings and Ctrl-C ------------------------------------------------------------------

# the quantization notice the data module raises; a stand-in class of gen_ext's own where the
# branch does not have it yet
PackageWarning = getattr(errors, "DataWarning", None) or type(
    "PackageWarning", (UserWarning,), {"__module__": "gen_ext.errors"}
)


def test_package_warnings_are_one_line(monkeypatch, capsys):
    def warns(args):
        warnings.warn("data.npy: values quantized\nto 17 levels", PackageWarning, stacklevel=1)
        return 0

    monkeypatch.setattr(cli, "cmd_info", warns)
    original = warnings.showwarning
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        line = assert_one_line(capsys, ["info"], 0, "gen-ext info: warning: ")
    assert line == "gen-ext info: warning: data.npy: values quantized to 17 levels"
    assert warnings.showwarning is original  # the hook lives only while the command runs


def test_other_warnings_go_to_pythons_own_display(monkeypatch, capsys):
    shown = []

    def warns(args):
        warnings.warn("from a library", UserWarning, stacklevel=1)
        warnings.warn("from gen_ext", PackageWarning, stacklevel=1)
        return 0

    monkeypatch.setattr(cli, "cmd_info", warns)
    monkeypatch.setattr(
        warnings,
        "showwarning",
        lambda message, category, *rest: shown.append((str(message), category)),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        code, lines = run_cli(["info"], capsys)
    assert code == 0 and shown == [("from a library", UserWarning)]
    assert lines == ["gen-ext info: warning: from gen_ext"]


def test_ctrl_c_is_one_line_exit_130(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "cmd_check", interrupted)
    assert assert_one_line(capsys, ["check"], 130) == "gen-ext check: interrupted"


def test_ctrl_c_in_training_says_how_to_resume(monkeypatch, tmp_path, capsys):
    def interrupted(cfg, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(gen_ext.train, "train", interrupted)
    assert_one_line(
        capsys, ["train", "vae", "--out", str(tmp_path)], 130, str(tmp_path), "--resume"
    )


# --- 5. --help shows every default -----------------------------------------------------------


@pytest.mark.parametrize("command", ["check", "bench", "train", "sample"])
def test_help_shows_every_default(capsys, command):
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    subparser = sub.choices[command]
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for action in subparser._actions:
        if action.dest in ("help", "fn", "parser") or not action.option_strings:
            continue
        # either argparse's "(default: X)" or help that says itself what the default is
        assert f"(default: {action.default})" in text or "default" in action.help, action.dest
        if action.default not in (None, []):
            assert f"(default: {action.default})" in text, action.dest


# --- 6. progress -----------------------------------------------------------------------------


def test_check_shows_progress_over_its_ops(monkeypatch, capsys):
    row = check.CheckRow("op", "case", 0.0, 1.0, "")
    monkeypatch.setattr(check, "CHECKS", {"first": lambda d: [row], "second": lambda d: [row]})
    assert check.run_checks(torch.device("cpu")) == [row, row]
    assert capsys.readouterr().err == ""
    check.run_checks(torch.device("cpu"), progress=True)
    assert "check:   0%|          | 0/2 [" in capsys.readouterr().err
    monkeypatch.setattr(cli, "show_progress", lambda: True)
    assert main(["check"]) == 0
    bar = capsys.readouterr().err
    assert "/2 [" in bar and "second" in bar  # the bar names the op in progress


@pytest.mark.parametrize("cls,steps", [(PixelCNN, "/12 [00:"), (PixelCNNPlusPlus, "/6 [00:")])
def test_naive_samplers_show_progress_and_draw_the_same(capsys, cls, steps):
    """PixelCNN: one step per sub-pixel (3 channels of 2x2); PixelCNN++: one per pixel (2x3)."""
    shape = (3, 2, 2) if cls is PixelCNN else (1, 2, 3)
    kwargs = (
        {"hidden": 3, "head": 3, "blocks": 1}
        if cls is PixelCNN
        else {"channels": 4, "resolutions": 1, "blocks": 1}
    )
    model = cls(input_shape=shape, **kwargs).eval()
    quiet = model.sample(2, torch.Generator().manual_seed(5))
    assert capsys.readouterr().err == ""
    shown = model.sample(2, torch.Generator().manual_seed(5), progress=True)
    bar = capsys.readouterr().err
    assert "sampling: " in bar and steps in bar
    assert torch.equal(quiet, shown)


def test_every_sampler_takes_progress(capsys):
    for cls in MODELS.values():
        if cls().can_sample:
            assert "progress" in inspect.signature(cls.sample).parameters, cls.__name__
    # the VAE's one pass has no bar to show
    VAE().sample(2, torch.Generator().manual_seed(0), progress=True)
    assert capsys.readouterr().err == ""


def test_sample_command_shows_progress_and_writes_png(monkeypatch, tmp_path, capsys):
    path = tmp_path / "pixelcnn.pt"
    PixelCNN(input_shape=(1, 3, 3), hidden=2, head=2, blocks=1).save(path)
    monkeypatch.setattr(cli, "show_progress", lambda: True)
    out = tmp_path / "grid.png"
    assert main(["sample", str(path), "-n", "2", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "sampling: " in captured.err and "/9 [" in captured.err
    assert f"written: {out}" in captured.out
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_naive_is_refused_for_a_model_that_samples_in_one_pass(tmp_path, capsys):
    from gen_ext.models import DCGAN

    path = tmp_path / "dcgan.pt"
    DCGAN(width=4, latent_dim=4).save(path)
    code, lines = run_cli(
        ["sample", str(path), "--naive", "--out", str(tmp_path / "s.png")], capsys
    )
    assert code == 1 and lines == [
        "gen-ext sample: --naive: DCGAN draws its samples in one pass; it has no cached and "
        "naive samplers"
    ]
    assert main(["sample", str(path), "-n", "4", "--out", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").stat().st_size > 0
