import pytest
import timm
import torch
from conftest import small_acan, small_msfnet

from depth_estimation_ros.core.models import build_model, list_models
from depth_estimation_ros.core.models.complexity import count_parameters
from depth_estimation_ros.core.ordinal import OrdinalBins
from training.losses import acan_loss, msfnet_loss

LIGHT_BACKBONES = ["resnet18", "efficientnet_b0", "mobilenetv3_large_100"]


@pytest.mark.parametrize("backbone", LIGHT_BACKBONES)
@pytest.mark.parametrize("size", [(64, 96), (96, 64)])
def test_acan_eval_output_is_metric_depth_and_confidence_at_input_size(backbone, size):
    model = small_acan(backbone=backbone).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, *size))
    assert set(out) == {"depth", "confidence"}
    depth, confidence = out["depth"], out["confidence"]
    assert depth.shape == confidence.shape == (2, 1, *size)
    assert torch.isfinite(depth).all()
    assert depth.min() >= 0.5
    assert depth.max() <= 10.0
    assert confidence.min() >= 0
    assert confidence.max() <= 1


@pytest.mark.parametrize("backbone", LIGHT_BACKBONES)
@pytest.mark.parametrize("size", [(64, 96), (96, 64)])
def test_msfnet_eval_output_is_metric_depth_at_input_size_without_confidence(backbone, size):
    model = small_msfnet(backbone=backbone).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, *size))
    assert set(out) == {"depth"}  # the paper has no principled confidence
    assert out["depth"].shape == (2, 1, *size)
    assert out["depth"].min() >= 0.5
    assert out["depth"].max() <= 10.0


def test_acan_training_outputs_hold_ordinal_logits_probabilities_and_attention():
    model = small_acan(num_bins=12).train()
    out = model(torch.rand(2, 3, 64, 96))
    assert out["logits"].shape == (2, 24, 64, 96)
    assert out["probabilities"].shape == (2, 12, 64, 96)
    n = (64 // 8) * (96 // 8)
    assert out["attention"].shape == (2, n, n)
    assert torch.allclose(out["attention"].sum(-1), torch.ones(2, n), atol=1e-5)
    assert torch.allclose(out["probabilities"], model.bins.probabilities(out["logits"]))


def test_msfnet_training_outputs_hold_half_resolution_depth_and_two_auxiliary_maps():
    model = small_msfnet().train()
    out = model(torch.rand(2, 3, 64, 96))
    assert out["depth_half"].shape == (2, 1, 32, 48)
    assert len(out["aux"]) == 2
    assert all(a.shape == (2, 1, 32, 48) for a in out["aux"])


@pytest.mark.parametrize(
    ("factory", "size", "rule"),
    [
        (small_acan, (60, 96), "multiples of 8"),
        (small_msfnet, (64, 80), "multiples of 32"),
    ],
)
def test_unsupported_input_sizes_are_rejected_with_the_rule(factory, size, rule):
    model = factory().eval()
    with pytest.raises(ValueError, match=rf"{size[0]}x{size[1]}.*{rule}"):
        model(torch.rand(1, 3, *size))


def test_non_rgb_input_is_rejected():
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\).*\(1, 4, 64, 64\)"):
        small_acan().eval()(torch.rand(1, 4, 64, 64))


def test_unknown_models_backbones_and_options_are_rejected():
    assert list_models() == ["acan", "msfnet"]
    with pytest.raises(ValueError, match="unknown model 'dpt'"):
        build_model("dpt")
    with pytest.raises(ValueError, match="unknown backbone 'resnet5000'"):
        build_model("acan", backbone="resnet5000")
    with pytest.raises(ValueError, match="bad options for model 'acan'"):
        build_model("acan", bins=80)
    with pytest.raises(ValueError, match="num_bins"):
        build_model("acan", backbone="resnet18", num_bins=1)


def test_model_config_records_every_option_except_pretrained():
    model = small_acan(num_bins=10)
    assert model.config["name"] == "acan"
    assert model.config["num_bins"] == 10
    assert model.config["decode"] == "soft"
    assert "pretrained" not in model.config


def test_input_is_normalised_with_the_backbone_statistics():
    model = small_acan()
    cfg = timm.create_model("resnet18").pretrained_cfg
    assert model.normalization["mean"] == pytest.approx(list(cfg["mean"]))
    assert model.normalization["std"] == pytest.approx(list(cfg["std"]))


def open_residual_gates(model):
    """timm zero-initialises the last norm of each residual block, which blocks gradients to the
    block's inner layers at step 0 by design; set norm scales to 1 to test connectivity."""
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            torch.nn.init.ones_(m.weight)
    return model


def assert_every_parameter_has_a_gradient(model):
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"no gradient reaches {missing}"


def test_gradients_reach_every_acan_parameter():
    model = open_residual_gates(small_acan().train())
    image = torch.rand(2, 3, 64, 96)
    depth = 1 + 5 * torch.rand(2, 1, 64, 96)
    acan_loss(model(image), depth, model.bins)["loss"].backward()
    assert_every_parameter_has_a_gradient(model)


def test_gradients_reach_every_msfnet_parameter():
    model = open_residual_gates(small_msfnet().train())
    image = torch.rand(2, 3, 64, 96)
    depth = 1 + 5 * torch.rand(2, 1, 64, 96)
    msfnet_loss(model(image), depth, max_depth=10.0)["loss"].backward()
    assert_every_parameter_has_a_gradient(model)


def test_hard_decoding_gives_bin_centres():
    model = small_acan(decode="hard").eval()
    with torch.no_grad():
        depth = model(torch.rand(1, 3, 64, 64))["depth"]
    bins = OrdinalBins(0.5, 10.0, 16)
    assert torch.isclose(depth.unique().view(-1, 1), bins.centres.float().view(1, -1), rtol=1e-5).any(1).all()


@pytest.mark.parametrize(
    ("name", "backbone", "low", "high"),
    [
        ("acan", "resnet50", 70e6, 75e6),
        ("acan", "resnet101", 92.3e6, 92.5e6),  # the reference ACAN-R101: 92.38 M
        ("msfnet", "legacy_senet154", 120e6, 170e6),  # SENet-154 alone is about 115 M
    ],
)
def test_paper_configurations_build_with_their_published_sizes(name, backbone, low, high):
    with torch.device("meta"):  # sizes only: no memory, no initialisation time
        model = build_model(name, backbone=backbone)
    assert low < count_parameters(model) < high


def dilations(stage: torch.nn.Module) -> list[int]:
    return [m.dilation[0] for m in stage.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]


@pytest.mark.parametrize("backbone", ["resnet18", "resnet50"])
def test_acan_dilates_every_block_of_stage_3_by_2_and_of_stage_4_by_4_as_the_reference(backbone):
    with torch.device("meta"):
        model = build_model("acan", backbone=backbone)
        timm_layout = build_model("acan", backbone=backbone, full_dilation=False)
    for stage, rate in (("layer3", 2), ("layer4", 4)):
        convs = [m for m in getattr(model.encoder, stage).modules() if isinstance(m, torch.nn.Conv2d)]
        assert all(m.padding == m.dilation for m in convs if m.kernel_size == (3, 3))
        assert set(dilations(getattr(model.encoder, stage))) == {rate}
        assert dilations(getattr(timm_layout.encoder, stage))[0] == rate // 2  # timm's first block


def test_full_dilation_changes_the_features_but_keeps_every_weight_shape():
    torch.manual_seed(0)
    patched = open_residual_gates(small_acan()).eval()  # zero-initialised residuals would hide it
    plain = small_acan(full_dilation=False).eval()
    plain.load_state_dict(patched.state_dict())
    image = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert not torch.allclose(patched.encoder(image)[-1], plain.encoder(image)[-1])


def test_acan_upsamples_logits_with_aligned_corners_by_default():
    model = small_acan().eval()
    assert model.align_corners
    assert model.config["align_corners"] is True
    captured = {}
    model.classifier.register_forward_hook(lambda m, i, o: captured.update(low=o))
    with torch.no_grad():
        model.train()
        logits = model(torch.rand(1, 3, 32, 48))["logits"]
    low = captured["low"]
    assert torch.allclose(logits[..., 0, 0], low[..., 0, 0])  # corners coincide
    assert torch.allclose(logits[..., -1, -1], low[..., -1, -1])
    expected = torch.nn.functional.interpolate(low, size=(32, 48), mode="bilinear", align_corners=True)
    assert torch.allclose(logits, expected)


def test_acan_has_the_reference_dropout_in_three_places_and_kaiming_initialised_new_layers():
    model = small_acan(value_channels=256)
    drops = [m for m in model.cam.modules() if isinstance(m, torch.nn.Dropout2d | torch.nn.Dropout)]
    assert [m.p for m in drops] == [0.5, 0.5, 0.5]
    assert model.cam.fuse[0].out_channels == 32  # small_acan narrows it; the default is 2048
    conv = model.cam.value[0]  # 3x3, fan-in 512 * 9: Kaiming std sqrt(2 / fan_in)
    fan_in = conv.in_channels * 9
    assert conv.weight.std().item() == pytest.approx((2 / fan_in) ** 0.5, rel=0.05)
    assert torch.count_nonzero(conv.bias) == 0
    classifier = model.classifier.weight
    assert classifier.std().item() == pytest.approx((2 / classifier.shape[1]) ** 0.5, rel=0.15)


def test_msfnet_new_layers_are_xavier_initialised_and_the_encoder_is_untouched():
    model = small_msfnet()
    for conv in (model.bottleneck, model.up1.convs[0], model.head, model.usf.fuse[0]):
        fan_in = conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1]
        fan_out = conv.out_channels * conv.kernel_size[0] * conv.kernel_size[1]
        bound = (6 / (fan_in + fan_out)) ** 0.5
        assert conv.weight.abs().max().item() <= bound
        assert conv.weight.std().item() == pytest.approx(bound / 3**0.5, rel=0.25)
        assert conv.bias is None or torch.count_nonzero(conv.bias) == 0
    stem = model.encoder.conv1.weight  # timm's own (Kaiming) initialisation, not Xavier
    bound = (6 / (3 * 49 + 64 * 49)) ** 0.5
    assert stem.abs().max().item() > bound
