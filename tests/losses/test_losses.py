from __future__ import annotations

import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from timm.optim import create_optimizer_v2
from torch import nn

from mtl_heads import LinearLabelMapHead, MaskedMultiTaskLoss, masked_multitask_loss


def _batch(b: int = 4, c: int = 7, k: int = 3, s: int = 6, valid: list[bool] | None = None):
    outputs = {
        "logits": torch.randn(b, c, dtype=torch.float64),
        "label_maps": torch.randn(b, k, s, s, dtype=torch.float64),
    }
    targets = {
        "label": torch.randint(0, c, (b,)),
        "label_maps": (torch.rand(b, k, s, s, dtype=torch.float64) > 0.7).double(),
        "label_maps_valid": torch.tensor(valid if valid is not None else [True] * b),
    }
    return outputs, targets


def _by_hand(outputs, targets, lam: float) -> float:
    """Eq. (1)-(3) of the paper with explicit loops."""
    logits, labels = outputs["logits"].tolist(), targets["label"].tolist()
    b = len(logits)
    ce = 0.0
    for n in range(b):
        log_z = math.log(sum(math.exp(v) for v in logits[n]))
        ce += -(logits[n][labels[n]] - log_z)
    ce /= b  # C_e: mean negative log-likelihood
    pred, tgt = outputs["label_maps"].tolist(), targets["label_maps"].tolist()
    valid = targets["label_maps_valid"].tolist()
    cl = 0.0
    for n in range(b):
        total, count = 0.0, 0
        for k in range(len(pred[n])):
            for i in range(len(pred[n][k])):
                for j in range(len(pred[n][k][i])):
                    p = 1.0 / (1.0 + math.exp(-pred[n][k][i][j]))
                    y = tgt[n][k][i][j]
                    total += -(y * math.log(p) + (1 - y) * math.log(1 - p))
                    count += 1
        cl += (1.0 if valid[n] else 0.0) * total / count  # v_n * mean over the K*H*W units
    cl /= b  # the paper's 1/B
    return ce + lam * cl


@pytest.mark.parametrize("lam", [1.0, 0.3])
def test_equals_paper_equations_by_hand(lam: float) -> None:
    outputs, targets = _batch(valid=[True, False, True, True])
    loss, terms = masked_multitask_loss(outputs, targets, lam=lam, return_terms=True)
    assert loss.item() == pytest.approx(_by_hand(outputs, targets, lam), rel=1e-10)
    assert (terms["ce"] + lam * terms["label_maps"]).item() == pytest.approx(loss.item())
    assert terms["num_valid"].item() == 3
    module = MaskedMultiTaskLoss(lam=lam)
    assert module(outputs, targets).item() == pytest.approx(loss.item(), rel=1e-12)
    assert module.last_terms["loss"].item() == pytest.approx(loss.item(), rel=1e-12)


def test_valid_reduction_divides_by_valid_count() -> None:
    outputs, targets = _batch(valid=[True, False, True, False])
    _, batch = masked_multitask_loss(outputs, targets, return_terms=True)
    _, valid = masked_multitask_loss(
        outputs, targets, label_map_reduction="valid", return_terms=True
    )
    assert valid["label_maps"].item() == pytest.approx(2 * batch["label_maps"].item())


def _head_and_outputs(b: int = 3):
    head = LinearLabelMapHead(5, num_label_maps=3, img_size=4)
    logits = torch.randn(b, 7, requires_grad=True)
    outputs = {"logits": logits, "label_maps": head(torch.randn(b, 5))}
    return head, logits, outputs


def test_all_invalid_batch_zero_head_gradient() -> None:
    head, logits, outputs = _head_and_outputs()
    targets = {
        "label": torch.tensor([0, 1, 2]),
        "label_maps": torch.full((3, 3, 4, 4), float("nan")),  # invalid maps may hold NaN
        "label_maps_valid": torch.zeros(3, dtype=torch.bool),
    }
    loss = masked_multitask_loss(outputs, targets)
    assert torch.isfinite(loss)
    assert loss.item() == pytest.approx(F.cross_entropy(logits, targets["label"]).item())
    loss.backward()
    for p in head.parameters():  # used (DDP sees a gradient) but not moved
        assert p.grad is not None and torch.count_nonzero(p.grad) == 0
    assert torch.isfinite(logits.grad).all()


def test_nan_maps_of_invalid_samples_do_not_leak() -> None:
    head, _, outputs = _head_and_outputs()
    maps = torch.rand(3, 3, 4, 4).round()
    maps[1] = float("nan")
    targets = {
        "label": torch.tensor([0, 1, 2]),
        "label_maps": maps,
        "label_maps_valid": torch.tensor([True, False, True]),
    }
    loss = masked_multitask_loss(outputs, targets)
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all() for p in head.parameters())


def test_all_labels_missing() -> None:
    head, logits, outputs = _head_and_outputs()
    targets = {"label": torch.full((3,), -100), "label_maps": torch.rand(3, 3, 4, 4).round()}
    for weight in (None, torch.rand(7)):
        loss, terms = masked_multitask_loss(
            outputs, targets, class_weight=weight, label_smoothing=0.1, return_terms=True
        )
        assert torch.isfinite(loss) and terms["ce"].item() == 0.0
        assert loss.item() == pytest.approx(terms["label_maps"].item())
    loss.backward()
    assert logits.grad is not None and torch.count_nonzero(logits.grad) == 0


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("weighted", [False, True])
def test_ce_term_matches_torch(smoothing: float, weighted: bool) -> None:
    outputs, targets = _batch(b=6)
    targets["label"][2] = -100
    weight = torch.rand(7, dtype=torch.float64) + 0.5 if weighted else None
    _, terms = masked_multitask_loss(
        outputs, targets, label_smoothing=smoothing, class_weight=weight, return_terms=True
    )
    ref = F.cross_entropy(
        outputs["logits"], targets["label"], weight=weight, label_smoothing=smoothing
    )
    assert terms["ce"].item() == pytest.approx(ref.item(), rel=1e-10)
    # soft labels (FER+ vote distributions) take the same options
    soft = torch.softmax(torch.randn(6, 7, dtype=torch.float64), 1)
    _, terms = masked_multitask_loss(
        outputs,
        {**targets, "label": soft},
        label_smoothing=smoothing,
        class_weight=weight,
        return_terms=True,
    )
    ref = F.cross_entropy(outputs["logits"], soft, weight=weight, label_smoothing=smoothing)
    assert terms["ce"].item() == pytest.approx(ref.item(), rel=1e-10)


def test_module_class_weight_is_a_buffer() -> None:
    loss_fn = MaskedMultiTaskLoss(class_weight=[1.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    assert "class_weight" in dict(loss_fn.named_buffers())
    outputs, targets = _batch()
    outputs = {k: v.float() for k, v in outputs.items()}
    ref = F.cross_entropy(outputs["logits"], targets["label"], weight=loss_fn.class_weight)
    loss_fn(outputs, targets)
    assert loss_fn.last_terms["ce"].item() == pytest.approx(ref.item(), rel=1e-6)


def test_baseline_outputs_give_ce_only() -> None:
    outputs, targets = _batch()
    del outputs["label_maps"]
    loss, terms = masked_multitask_loss(outputs, {"label": targets["label"]}, return_terms=True)
    assert loss.item() == pytest.approx(
        F.cross_entropy(outputs["logits"], targets["label"]).item()
    )
    assert set(terms) == {"ce", "loss"}


def test_uncertainty_weighting_trains() -> None:
    torch.manual_seed(0)
    model = nn.Linear(4, 7 + 3 * 2 * 2)
    loss_fn = MaskedMultiTaskLoss(weighting="uncertainty")
    assert loss_fn.log_vars is not None and loss_fn.log_vars.shape == (2,)
    optimizer = create_optimizer_v2(nn.ModuleList([model, loss_fn]), "sgd", lr=0.1)
    assert any(p is loss_fn.log_vars for g in optimizer.param_groups for p in g["params"])
    x = torch.randn(16, 4)
    targets = {
        "label": torch.randint(0, 7, (16,)),
        "label_maps": torch.rand(16, 3, 2, 2).round(),
        "label_maps_valid": torch.rand(16) > 0.3,
    }
    losses = []
    for _ in range(30):
        y = model(x)
        outputs = {"logits": y[:, :7], "label_maps": y[:, 7:].view(16, 3, 2, 2)}
        loss = loss_fn(outputs, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert torch.count_nonzero(loss_fn.log_vars.detach()) == 2
    assert {"log_var_ce", "log_var_label_maps"} <= set(loss_fn.last_terms)


def test_uncertainty_formula_and_all_invalid() -> None:
    outputs, targets = _batch(valid=[True, False, True, True])
    log_vars = torch.tensor([0.3, -0.2], dtype=torch.float64, requires_grad=True)
    loss, terms = masked_multitask_loss(outputs, targets, log_vars=log_vars, return_terms=True)
    expected = math.exp(-0.3) * terms["ce"] + 0.15 + math.exp(0.2) * terms["label_maps"] - 0.1
    assert loss.item() == pytest.approx(expected.item())
    targets["label_maps_valid"][:] = False
    loss = masked_multitask_loss(outputs, targets, log_vars=log_vars)
    loss.backward()
    assert log_vars.grad[1].item() == 0.0  # no valid maps: the map task's variance stays put


# --- bad input -> clear errors -------------------------------------------------------------------


def test_target_errors() -> None:
    outputs, targets = _batch(b=4, k=3, s=6)
    cases = [
        ({"label": torch.randint(0, 7, (3,))}, "has 3 entries but the batch has 4"),
        ({"label": torch.tensor([0, 1, 7, 2])}, r"targets\['label'\]\[2\] = 7 is not a class id"),
        ({"label": torch.rand(4)}, "must hold integer class ids"),
        ({"label": torch.rand(4, 6)}, r"must be \(B, C\) = \(4, 7\)"),
        ({"label": torch.rand(4, 7, 1)}, r"must be \(B,\) class ids or \(B, C\) probabilities"),
        ({"label": torch.full((4, 7), float("nan"))}, "row 0 contains NaN"),
        ({"label": torch.rand(4, 7) * 2}, r"must lie in \[0, 1\]"),
        ({"label_maps": torch.rand(4, 2, 6, 6)}, "has K=2 maps but the model predicts K=3"),
        ({"label_maps": torch.rand(4, 3, 5, 5)}, "are 5x5 but the predicted label maps are 6x6"),
        ({"label_maps": torch.rand(4, 3, 6)}, r"must be \(B, K, H, W\)"),
        ({"label_maps": torch.rand(2, 3, 6, 6)}, "has 2 samples but the batch has 4"),
        ({"label_maps": torch.rand(4, 3, 6, 6) * 3}, r"must lie in \[0, 1\]"),
        (
            {"label_maps": torch.full((4, 3, 6, 6), float("nan"))},
            r"label_maps'\]\[0\] contains NaN although label_maps_valid\[0\] is True",
        ),
        (
            {"label_maps_valid": torch.tensor([1.0, 0.5, 0.0, 1.0])},
            "must be bool .* got 0.5 at index 1",
        ),
        ({"label_maps_valid": torch.tensor([1, 2, 0, 1])}, "must be bool .* got 2 at index 1"),
        ({"label_maps_valid": torch.ones(3, dtype=torch.bool)}, r"must be \(B,\) = \(4,\)"),
    ]
    for change, message in cases:
        with pytest.raises((ValueError, TypeError), match=message):
            masked_multitask_loss(outputs, {**targets, **change})
    with pytest.raises(ValueError, match="outputs have 'label_maps' but targets do not"):
        masked_multitask_loss(outputs, {"label": targets["label"]})
    with pytest.raises(TypeError, match="targets must be a dict with a 'label' entry"):
        masked_multitask_loss(outputs, {"label_maps": targets["label_maps"]})
    with pytest.raises(ValueError, match=r"class_weight must have shape \(7,\)"):
        masked_multitask_loss(outputs, targets, class_weight=torch.ones(6))
    # integer 0/1 validity is accepted
    masked_multitask_loss(outputs, {**targets, "label_maps_valid": torch.tensor([1, 0, 1, 1])})


def test_module_argument_errors() -> None:
    with pytest.raises(ValueError, match="weighting must be one of"):
        MaskedMultiTaskLoss(weighting="gradnorm")
    with pytest.raises(ValueError, match="lam is replaced by the learned log-variances"):
        MaskedMultiTaskLoss(lam=0.5, weighting="uncertainty")
    with pytest.raises(ValueError, match="label_map_reduction must be one of"):
        MaskedMultiTaskLoss(label_map_reduction="sum")
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\]"):
        MaskedMultiTaskLoss(label_smoothing=1.5)


# --- map losses by name (issue 12) ---------------------------------------------------------------

from mtl_heads.losses import MAP_LOSSES, label_map_loss  # noqa: E402


def _maps_case():
    torch.manual_seed(3)
    pred = torch.randn(3, 2, 5, 4)
    target = torch.zeros(3, 2, 5, 4)
    target[:, 0, 1:3, 1:3] = 1.0
    target[:, 1, 4, :] = 0.5
    return pred, target


def test_paper_text_is_eq2_times_pixels():
    pred, target = _maps_case()
    eq2 = label_map_loss(pred, target, "paper_eq2")
    text = label_map_loss(pred, target, "paper_text")
    torch.testing.assert_close(text, eq2 * 20)  # H * W = 5 * 4


def test_dice_by_hand():
    pred, target = _maps_case()
    p = torch.sigmoid(pred)
    expected = []
    for n in range(3):
        per_map = []
        for k in range(2):
            inter = float((p[n, k] * target[n, k]).sum())
            denom = float(p[n, k].sum() + target[n, k].sum())
            per_map.append(1 - (2 * inter + 1) / (denom + 1))
        expected.append(sum(per_map) / 2)
    torch.testing.assert_close(label_map_loss(pred, target, "dice"), torch.tensor(expected))
    torch.testing.assert_close(
        label_map_loss(pred, target, "bce_dice"),
        label_map_loss(pred, target, "paper_eq2") + torch.tensor(expected),
    )


def test_balanced_bce_by_hand():
    pred, target = _maps_case()
    valid = torch.tensor([True, True, False])
    out = label_map_loss(pred, target, "balanced_bce", valid)
    # foreground fractions over the two valid images: map 0 4/20, map 1 (soft) 2/20
    pw = torch.tensor([(1 - 0.2) / 0.2, (1 - 0.1) / 0.1])
    p = torch.sigmoid(pred)
    per_unit = -(pw[None, :, None, None] * target * p.log() + (1 - target) * (1 - p).log())
    torch.testing.assert_close(out, per_unit.flatten(1).mean(1))


def test_mse_and_focal_by_hand():
    pred, target = _maps_case()
    p = torch.sigmoid(pred)
    torch.testing.assert_close(
        label_map_loss(pred, target, "mse"), (p - target).pow(2).flatten(1).mean(1)
    )
    bce = -(target * p.log() + (1 - target) * (1 - p).log())
    focal = ((target - p).abs() ** 2 * bce).sum((2, 3)) / target.sum((2, 3)).clamp_min(1)
    torch.testing.assert_close(label_map_loss(pred, target, "focal"), focal.mean(1))


@pytest.mark.parametrize("map_loss", MAP_LOSSES)
def test_every_map_loss_masked_finite_and_differentiable(map_loss):
    pred, target = _maps_case()
    pred.requires_grad_(True)
    target[2] = float("nan")  # invalid sample: garbage must not reach the loss
    outputs = {"logits": torch.randn(3, 7), "label_maps": pred}
    targets = {"label": torch.tensor([0, 1, 2]), "label_maps": target,
               "label_maps_valid": torch.tensor([True, True, False])}
    loss, terms = masked_multitask_loss(outputs, targets, map_loss=map_loss, return_terms=True)
    assert torch.isfinite(loss)
    loss.backward()
    assert torch.isfinite(pred.grad).all()
    assert pred.grad[2].abs().sum() == 0  # the invalid sample gets no gradient
    # batch reduction: sum over valid images / B
    clean = target.clone()
    clean[2] = 0
    expected = label_map_loss(pred.detach(), clean, map_loss,
                              torch.tensor([True, True, False]))[:2].sum() / 3
    torch.testing.assert_close(terms["label_maps"], expected)
    # an all-invalid batch: finite, CE only
    targets["label_maps_valid"] = torch.zeros(3, dtype=torch.bool)
    loss, terms = masked_multitask_loss(outputs, targets, map_loss=map_loss, return_terms=True)
    assert torch.isfinite(loss) and float(terms["label_maps"]) == 0.0


def test_unknown_map_loss_is_named():
    with pytest.raises(ValueError, match="map_loss must be one of .* got 'dicee'"):
        MaskedMultiTaskLoss(map_loss="dicee")
    outputs = {"logits": torch.randn(1, 7), "label_maps": torch.randn(1, 1, 2, 2)}
    targets = {"label": torch.tensor([0]), "label_maps": torch.zeros(1, 1, 2, 2)}
    with pytest.raises(ValueError, match="'l2'"):
        masked_multitask_loss(outputs, targets, map_loss="l2")


def test_soft_targets_outside_unit_range_rejected():
    outputs = {"logits": torch.randn(1, 7), "label_maps": torch.randn(1, 1, 2, 2)}
    targets = {"label": torch.tensor([0]), "label_maps": torch.full((1, 1, 2, 2), 1.5)}
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        masked_multitask_loss(outputs, targets, map_loss="mse")


@pytest.mark.parametrize("map_loss", MAP_LOSSES)
@pytest.mark.parametrize("reduction", ["batch", "valid"])
def test_face_batch_key_gives_the_same_loss_bit_for_bit(map_loss: str, reduction: str) -> None:
    # a face data set's items say "landmarks_valid"; the loss reads it as the maps' validity, so
    # results (and the committed study numbers) do not depend on which name the batch uses
    torch.manual_seed(0)
    outputs, targets = _batch(b=6, valid=[True, False, True, True, False, True])
    outputs = {k: v.float().requires_grad_() for k, v in outputs.items()}
    targets = {k: (v.float() if v.is_floating_point() else v) for k, v in targets.items()}
    face = {k: v for k, v in targets.items() if k != "label_maps_valid"}
    face["landmarks_valid"] = targets["label_maps_valid"]
    kwargs = dict(map_loss=map_loss, label_map_reduction=reduction, return_terms=True)
    new, new_terms = masked_multitask_loss(outputs, targets, **kwargs)
    (new_grad,) = torch.autograd.grad(new, outputs["label_maps"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the face key is an accepted name, not a deprecated one
        old, old_terms = masked_multitask_loss(outputs, face, **kwargs)
    (old_grad,) = torch.autograd.grad(old, outputs["label_maps"])
    assert torch.equal(new, old) and torch.equal(new_grad, old_grad)
    assert all(torch.equal(new_terms[k], old_terms[k]) for k in new_terms)
    module = MaskedMultiTaskLoss(map_loss=map_loss, label_map_reduction=reduction)
    assert torch.equal(module(outputs, targets), module(outputs, face))


def test_label_maps_valid_wins_over_the_face_key() -> None:
    outputs, targets = _batch(valid=[True, True, True, True])
    both = {**targets, "landmarks_valid": torch.tensor([True, False, False, True])}
    loss = masked_multitask_loss(outputs, both)
    assert torch.equal(loss, masked_multitask_loss(outputs, targets))
    # None means "not given": the other key is read
    face = {**targets, "label_maps_valid": None, "landmarks_valid": torch.zeros(4, dtype=bool)}
    _, terms = masked_multitask_loss(outputs, face, return_terms=True)
    assert terms["num_valid"].item() == 0


def test_bad_face_key_is_named_as_given() -> None:
    outputs, targets = _batch()
    face = {k: v for k, v in targets.items() if k != "label_maps_valid"}
    face["landmarks_valid"] = torch.ones(3, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"targets\['landmarks_valid'\] must be \(B,\) = \(4,\)"):
        masked_multitask_loss(outputs, face)
