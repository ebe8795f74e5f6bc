"""The GAN family: sampling, what each training step updates, the losses against their formulas,
WGAN's clipping and critic schedule, WGAN-GP's penalty (its double backward through gen_ext's
concat ELU checked with gradcheck), BEGAN's controller, and InfoGAN's codes and agreement."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call
from train_helpers import TINY

from gen_ext.models import BEGAN, DCGAN, GAN, MODELS, WGAN, WGANGP, InfoGAN
from gen_ext.models.adversarial import (
    AdversarialModel,
    ConvDiscriminator,
    frozen,
    gradient_penalty,
    to_signed,
)
from gen_ext.models.infogan import best_matching_agreement
from gen_ext.train import _Updater

ADVERSARIAL = sorted(n for n, cls in MODELS.items() if issubclass(cls, AdversarialModel))


def tiny(name: str, **extra):
    torch.manual_seed(0)
    return MODELS[name](**{**TINY[name], **extra}).double()


def step(model, x, number=1, optimizers=None):
    optimizers = optimizers or model.make_optimizers(1e-3)
    return model.training_step(x, _Updater(model, optimizers, number, 10), number), optimizers


def snapshot(module):
    return [p.detach().clone() for p in module.parameters()]


def changed(module, before):
    return any(not torch.equal(p, q) for p, q in zip(module.parameters(), before, strict=True))


def digits_batch(n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 8, 8, generator=g, dtype=torch.float64)


def test_the_family_is_offered_by_train():
    assert ADVERSARIAL == sorted(["gan", "dcgan", "wgan", "wgan-gp", "began", "infogan"])


@pytest.mark.parametrize("name", ADVERSARIAL)
def test_samples_are_images_in_the_unit_interval_and_repeat_with_the_generator(name):
    model = tiny(name).eval()
    a = model.sample(5, torch.Generator().manual_seed(3))
    b = model.sample(5, torch.Generator().manual_seed(3))
    c = model.sample(5, torch.Generator().manual_seed(4))
    assert a.shape == (5, 1, 8, 8) and a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("name", ADVERSARIAL)
def test_a_step_updates_both_networks_and_each_optimizer_owns_one(name):
    model = tiny(name, **({"critic_steps": 1} if "critic_steps" in TINY[name] else {}))
    optimizers = model.make_optimizers(1e-3)
    d_params = {id(p) for g in optimizers["discriminator"].param_groups for p in g["params"]}
    g_params = {id(p) for g in optimizers["generator"].param_groups for p in g["params"]}
    assert not d_params & g_params
    assert g_params == {id(p) for p in model.generator.parameters()}
    assert d_params | g_params == {id(p) for p in model.parameters()}
    g_before, d_before = snapshot(model.generator), snapshot(model.discriminator_side())
    logs, _ = step(model, digits_batch(), optimizers=optimizers)
    assert changed(model.generator, g_before) and changed(model.discriminator_side(), d_before)
    assert all(math.isfinite(v) for v in logs.values())
    assert set(model.progress_logs) <= set(logs)


def test_frozen_computes_no_weight_gradients_and_restores_the_flags():
    d = ConvDiscriminator(1, 8, 4)
    d.head.weight.requires_grad_(False)
    x = torch.randn(3, 1, 8, 8, requires_grad=True)
    with frozen(d):
        d(x).sum().backward()
    assert x.grad is not None and all(p.grad is None for p in d.parameters())
    assert not d.head.weight.requires_grad
    assert all(p.requires_grad for n, p in d.named_parameters() if n != "head.weight")


class ConstantLogit(torch.nn.Module):
    """A discriminator that says `value` to everything, with one weight so it can be stepped."""

    def __init__(self, value):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros((), dtype=torch.float64))
        self.value = value

    def features(self, x):
        return x.flatten(1) + self.w

    def forward(self, x):
        return self.value + self.w + 0 * x.flatten(1).sum(1)


@pytest.mark.parametrize("logit", [0.0, 1.5])
def test_gan_losses_are_the_non_saturating_cross_entropies(logit):
    model = tiny("gan")
    model.discriminator = ConstantLogit(logit)
    logs, _ = step(model, digits_batch())
    # d: -log sigmoid(l) - log(1 - sigmoid(l)); g: -log sigmoid(l)
    ell = torch.tensor(logit)
    assert logs["d_loss"] == pytest.approx((F.softplus(-ell) + F.softplus(ell)).item())
    # the discriminator stepped before the generator's loss: its logit is now logit + w
    after = ell + model.discriminator.w.detach()
    assert logs["g_loss"] == pytest.approx(F.softplus(-after).item())


def test_feature_matching_adds_the_squared_distance_of_mean_features():
    model = tiny("gan", feature_matching=2.0)
    model.discriminator = ConstantLogit(0.0)  # its features: the signed image itself
    generator = copy.deepcopy(model.generator)
    x = digits_batch()
    torch.manual_seed(5)
    logs, _ = step(model, x)
    torch.manual_seed(5)  # the step's batch of generated images, redrawn
    fake = generator(model.noise(x.shape[0]))
    expected = (to_signed(x).flatten(1).mean(0) - fake.flatten(1).mean(0)).pow(2).sum().item()
    assert logs["feature_matching"] == pytest.approx(expected, rel=1e-9)
    # the discriminator stepped before the generator's loss: its logit is now w
    w = model.discriminator.w.detach()
    assert logs["g_loss"] == pytest.approx(F.softplus(-w).item() + 2.0 * expected, rel=1e-9)


def test_wgan_clips_the_critic_and_steps_the_generator_every_critic_steps():
    model = tiny("wgan", critic_steps=3, clip=0.005)
    optimizers = model.make_optimizers(0.1)  # large, so an unclipped weight would leave the box
    assert isinstance(optimizers["generator"], torch.optim.RMSprop)
    x = digits_batch()
    for number in range(1, 7):
        before = snapshot(model.generator)
        logs, _ = step(model, x, number, optimizers)
        assert all(p.abs().max() <= 0.005 for p in model.discriminator.parameters())
        stepped = number % 3 == 0
        assert changed(model.generator, before) == stepped
        assert ("g_loss" in logs) == stepped
        assert logs["d_loss"] == pytest.approx(-logs["wasserstein"])


def test_gradient_penalty_of_a_linear_critic_is_its_weight_norm_minus_one_squared():
    w = torch.randn(1, 1, 8, 8, dtype=torch.float64)

    def critic(x):
        return (x * w).flatten(1).sum(1)

    real, fake = digits_batch(4, 1), digits_batch(4, 2)
    expected = (w.norm() - 1) ** 2
    assert gradient_penalty(critic, real, fake).item() == pytest.approx(expected.item())


@pytest.mark.parametrize("activation", ["concat_elu", "leaky_relu"])
def test_the_penalty_differentiates_through_the_critic_including_gen_ext_ops(activation):
    """The critic's update needs the penalty's gradient in the weights: a double backward
    through every critic layer (gen_ext's concat ELU included). gradcheck compares it with
    finite differences in float64."""
    torch.manual_seed(0)
    critic = ConvDiscriminator(1, 8, 2, norm="none", activation=activation).double()
    names = [n for n, _ in critic.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_(True) for p in critic.parameters())
    real, fake = digits_batch(3, 1), digits_batch(3, 2)

    def penalty(*weights):
        torch.manual_seed(7)  # the same interpolation points every call

        def call(x):
            return functional_call(critic, dict(zip(names, weights, strict=True)), (x,))

        return gradient_penalty(call, real, fake)

    assert torch.autograd.gradcheck(penalty, params, eps=1e-6, atol=1e-6)


def test_wgan_gp_logs_its_penalty_and_uses_adam():
    model = tiny("wgan-gp")
    assert model.config["activation"] == "concat_elu"
    optimizers = model.make_optimizers(1e-3)
    assert isinstance(optimizers["discriminator"], torch.optim.Adam)
    assert optimizers["discriminator"].defaults["betas"] == (0.5, 0.9)
    logs, _ = step(model, digits_batch(), 1, optimizers)
    assert logs["gradient_penalty"] >= 0
    assert logs["d_loss"] == pytest.approx(-logs["wasserstein"] + 10 * logs["gradient_penalty"])


def test_began_m_global_and_k_match_the_losses_of_the_step():
    model = tiny("began", gamma=0.7, k_rate=0.5)
    optimizers = model.make_optimizers(0.0 + 1e-12)  # weights barely move: losses recomputable
    x = digits_batch()
    model.k.fill_(0.3)  # so the discriminator's loss has its k_t L(G(z)) term
    k_before = float(model.k)
    torch.manual_seed(11)
    z = model.noise(x.shape[0])
    with torch.no_grad():
        real = model.discriminator.loss(to_signed(x)).item()
        fake = model.discriminator.loss(model.generate(z)).item()
    torch.manual_seed(11)
    logs, _ = step(model, x, 1, optimizers)
    balance = 0.7 * real - fake
    assert logs["m_global"] == pytest.approx(real + abs(balance), rel=1e-6)
    assert logs["k"] == pytest.approx(min(max(k_before + 0.5 * balance, 0), 1), rel=1e-6)
    assert logs["d_loss"] == pytest.approx(real - k_before * fake, rel=1e-6)
    assert float(model.k) == logs["k"] and "k" in model.state_dict()  # saved with the weights


def test_began_k_stays_in_the_unit_interval():
    model = tiny("began", k_rate=100.0)  # each step would push k far outside [0, 1]
    optimizers = model.make_optimizers(1e-3)
    seen = [step(model, digits_batch(seed=n), n, optimizers)[0]["k"] for n in range(1, 6)]
    assert all(0 <= k <= 1 for k in seen) and any(k in (0.0, 1.0) for k in seen)


def test_infogan_input_holds_noise_a_one_hot_category_and_bounded_codes():
    model = tiny("infogan", categories=5, continuous=2)
    category = torch.tensor([0, 4, 2])
    z = model.noise(3, torch.Generator().manual_seed(0), category)
    k = model.latent_dim
    assert z.shape == (3, k + 5 + 2)
    assert torch.equal(z[:, k : k + 5].argmax(1), category)
    assert torch.equal(z[:, k : k + 5].sum(1), torch.ones(3, dtype=z.dtype))
    assert z[:, k + 5 :].abs().max() <= 1


class FixedPrediction(torch.nn.Module):
    def __init__(self, value):
        super().__init__()
        self.value = value

    def forward(self, features):
        return self.value + 0 * features.flatten(1).sum(1, keepdim=True)


def test_infogan_information_term_is_the_codes_negative_log_likelihood():
    model = tiny("infogan", categories=3, continuous=2, info_weight=0.5)
    z = model.noise(4, torch.Generator().manual_seed(0), torch.tensor([0, 2, 1, 2]))
    k = model.latent_dim
    predicted = torch.tensor(
        [[2.0, 0.0, -1.0, 0.1, 0.2], [0.0, 0.0, 0.0, 0.0, 0.0]] * 2, dtype=torch.float64
    )
    model.q_head = FixedPrediction(predicted)
    loss, logs = model.auxiliary_loss(model.generate(z), z)
    log_q = torch.log_softmax(predicted[:, :3], 1)
    cross_entropy = -log_q[torch.arange(4), z[:, k : k + 3].argmax(1)].mean()
    gaussian = 0.5 * (predicted[:, 3:] - z[:, k + 3 :]).pow(2).sum(1).mean()
    assert loss.item() == pytest.approx(0.5 * (cross_entropy + gaussian).item())
    assert logs["mutual_information"] == pytest.approx(math.log(3) - cross_entropy.item())


def test_infogan_generator_gets_the_information_terms_gradient():
    model = tiny("infogan")
    z = model.noise(6, torch.Generator().manual_seed(1))
    fake = model.generate(z)
    with frozen(model.discriminator_side()):
        aux, _ = model.auxiliary_loss(fake, z)
        grads = torch.autograd.grad(aux, list(model.generator.parameters()), allow_unused=True)
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    assert all(p.grad is None for p in model.q_head.parameters())


def test_infogan_mutual_information_bound_is_at_most_log_categories_and_q_is_trained():
    model = tiny("infogan")
    optimizers = model.make_optimizers(1e-3)
    q_params = {id(p) for p in model.q_head.parameters()}
    d_params = {id(p) for g in optimizers["discriminator"].param_groups for p in g["params"]}
    assert q_params <= d_params
    before = snapshot(model.q_head)
    logs, _ = step(model, digits_batch(), 1, optimizers)
    assert logs["mutual_information"] <= math.log(10) + 1e-12
    assert changed(model.q_head, before)


def test_best_matching_agreement_finds_the_permutation():
    codes = torch.arange(10).repeat_interleave(20)
    perm = torch.randperm(10, generator=torch.Generator().manual_seed(0))
    assert best_matching_agreement(codes, perm[codes], 10) == 1.0
    labels = perm[codes].clone()
    labels[:20] = perm[1]  # code 0's images all look like code 1's digit
    assert best_matching_agreement(codes, labels, 10) == pytest.approx(180 / 200)
    assert best_matching_agreement(codes, torch.zeros_like(codes), 10) == pytest.approx(0.1)


@pytest.mark.parametrize("name", ADVERSARIAL)
def test_on_digit_images_the_held_out_metric_is_sample_quality(name):
    model = tiny(name).float().eval()
    metrics = model.evaluate(torch.rand(30, 1, 8, 8))
    assert model.main_metric == "frechet_distance"
    assert {"frechet_distance", "precision", "recall", "coverage", "collapsed"} <= set(metrics)
    assert metrics["frechet_distance"] > 0
    if name == "infogan":
        assert 0 < metrics["code_agreement"] <= 1


@pytest.mark.parametrize("name", ADVERSARIAL)
def test_on_other_images_the_held_out_metric_is_the_discriminators(name):
    shape = (3, 8, 8)
    model = MODELS[name](input_shape=shape, **TINY[name]).eval()
    assert model.main_metric.startswith("held_out_")
    metrics = model.evaluate(torch.rand(6, *shape))
    assert set(metrics) == {model.main_metric} and math.isfinite(metrics[model.main_metric])


@pytest.mark.parametrize(
    "cls,kwargs,words",
    [
        (DCGAN, {"input_shape": (1, 6, 6)}, "power of two"),
        (WGAN, {"clip": 0}, "clip"),
        (WGANGP, {"activation": "relu"}, "activation"),
        (BEGAN, {"gamma": 1.5}, "gamma"),
        (InfoGAN, {"continuous": -1}, "continuous"),
        (GAN, {"feature_matching": float("nan")}, "feature_matching"),
        (WGAN, {"critic_steps": 0}, "critic_steps"),
        (WGAN, {"critic_steps": True}, "critic_steps"),
        (GAN, {"latent_dim": 2.5}, "latent_dim"),
        (GAN, {"input_shape": (8, 8)}, "input_shape"),
        (DCGAN, {"input_shape": 8}, "input_shape"),
        (BEGAN, {"k_rate": True}, "k_rate"),
    ],
)
def test_bad_settings_are_refused_naming_the_argument(cls, kwargs, words):
    with pytest.raises(ValueError, match=words):
        cls(**kwargs)


def test_digit_scoring_needs_digit_shaped_images():
    model = DCGAN(input_shape=(3, 8, 8))
    assert model.main_metric == "held_out_d_loss" and not model.lower_is_better
    with pytest.raises(ValueError, match="1x8x8"):
        model.set_digit_scoring(True)
    digits = DCGAN()
    digits.set_digit_scoring(False)
    assert digits.main_metric == "held_out_d_loss"
