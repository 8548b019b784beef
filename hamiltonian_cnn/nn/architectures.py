"""Networks of the three coupling families with the same architecture.

``build("shared" | "local" | "full", input_shape, n_classes, **arch)`` stacks coupling blocks
(window, stride, padding, activation, optional pooling) and a classifier head. The families
differ only in how each block's couplings are tied:

    shared  SharedConv:  J_ab, the same window at every site (convolution)
    local   LocalConv:   J_{IJ,ab}, the same windows, untied per site
    full    FullCoupled: J_{IJ,ij}, every output site of the block to every input site
    sparse  SparseCoupled: J_{IJ,k}, as many inputs per site as a window, drawn at random (a control)

so parameter counts go shared << local << full while the field shapes are identical.
"""

from __future__ import annotations

import math

import numpy as np

from .._checks import as_int, check_dtype, choice
from ..physics.formulas import inside_fraction, make_geometry
from .centring import Centring
from .model import Model
from .pool import MaxPool1d, MaxPool2d

FAMILIES = ("shared", "local", "full", "sparse")
PRESETS = ("lenet5", "vgg", "resnet", "inception")
HEADS = ("dense", "gap", "sites")
INITS = ("variance", "fan_in", "glorot")

#: the factor on the Glorot/He scale that keeps the field's variance through a block with this
#: activation: the marginal's slope at h = 0 is 1/4 for the binary ensemble (sigmoid), 1 for the
#: spin ensemble (tanh) (Glorot & Bengio 2010); He's scale already covers relu
INIT_GAIN = {"sigmoid": 4.0, "tanh": 1.0, "relu": 1.0, "softplus": 2.0, None: 1.0}

#: training defaults that work out of the box on small data (digits: >= 95 % for shared)
FIT_DEFAULTS = {"epochs": 30, "batch_size": 32, "lr": 1e-2, "optimizer": "adam", "weight_decay": 0.0,
                "schedule": "constant"}


def _seeds(seed, n):
    """n independent integer seeds derived from ``seed``."""
    ss = np.random.SeedSequence(None if seed is None else as_int(seed, "seed", 0))
    return [int(s.generate_state(1)[0]) for s in ss.spawn(n)]


def _check_fit_defaults(fit_defaults):
    """The training defaults given to ``build`` are checked now, not at the first ``fit``."""
    from .optim import OPTIMIZERS, _check_hyper

    for key in ("epochs", "batch_size"):
        if key in fit_defaults:
            as_int(fit_defaults[key], key, 1)
    if "lr" in fit_defaults:
        _check_hyper(fit_defaults["lr"], "lr", 0.0, open_low=True)
    if "weight_decay" in fit_defaults:
        _check_hyper(fit_defaults["weight_decay"], "weight_decay")
    if "optimizer" in fit_defaults:
        choice(fit_defaults["optimizer"], "optimizer", OPTIMIZERS)
    if "schedule" in fit_defaults:
        from .model import SCHEDULES

        choice(fit_defaults["schedule"], "schedule", SCHEDULES)


def _fan_in_factor(activation, fan_in, fan_out):
    """Glorot's variance 2 / (fan_in + fan_out) -> the forward one, 1 / fan_in (LeCun 1998): the
    factor sqrt((fan_in + fan_out) / (2 fan_in)); He's relu weights are already 2 / fan_in."""
    return 1.0 if activation == "relu" else math.sqrt((fan_in + fan_out) / (2.0 * fan_in))


def _coupling_block(family, in_shape, out_channels, kernel, stride, padding, activation, dtype, seed,
                    init="glorot"):
    """One coupling layer of the given family and its output shape.

    init "variance": the layer's Glorot/He weights times INIT_GAIN[activation] / sqrt(the mean
    fraction of a window inside the input), so that the field's variance is kept through depth
    even where most of a window lies on padding (a 3x3 window on 1x1 sites sees 1 tap of 9).
    init "fan_in": the same with the forward variance 1 / fan_in in place of Glorot's
    2 / (fan_in + fan_out) (larger where a block widens, as LeNet-5's do).
    """
    from . import FullCoupled, LocalConv1d, LocalConv2d, SharedConv1d, SharedConv2d, SparseCoupled

    nd = len(in_shape) - 1
    c_in = in_shape[0]
    geo = make_geometry(in_shape[1:], kernel, stride, padding, 1)
    out_shape = (out_channels,) + geo.out_sites
    window = math.prod(geo.kernel)
    if family == "shared":
        cls = SharedConv1d if nd == 1 else SharedConv2d
        layer = cls(c_in, out_channels, kernel, stride=stride, padding=padding, activation=activation,
                    dtype=dtype, seed=seed)
    elif family == "local":
        cls = LocalConv1d if nd == 1 else LocalConv2d
        layer = cls(c_in, out_channels, kernel, stride=stride, padding=padding, activation=activation,
                    dtype=dtype, seed=seed, input_size=in_shape[1:])
    elif family == "sparse":
        layer = SparseCoupled(c_in, out_channels, kernel, stride=stride, padding=padding, activation=activation,
                              dtype=dtype, seed=seed, input_size=in_shape[1:])
    else:
        layer = FullCoupled(in_shape, out_shape, activation=activation, dtype=dtype, seed=seed)
    if init in ("variance", "fan_in"):
        # full and sparse couplings have no padding: every input site in the fan-in is a real one
        scale = INIT_GAIN[activation] / math.sqrt(inside_fraction(geo) if family in ("shared", "local") else 1.0)
        if init == "fan_in":
            fans = ((math.prod(in_shape), math.prod(out_shape)) if family == "full"
                    else (c_in * window, out_channels * window))
            scale *= _fan_in_factor(activation, *fans)
        layer.params["J"] *= np.asarray(scale, dtype=layer.params["J"].dtype)
    return layer, out_shape


def _pool(nd, window, mode):
    from . import AvgPool1d, AvgPool2d, MaxPool1d, MaxPool2d

    if mode == "max":
        return (MaxPool1d if nd == 1 else MaxPool2d)(window)
    return (AvgPool1d if nd == 1 else AvgPool2d)(window)


def default_channels(input_shape) -> tuple[int, ...]:
    """The default blocks: two of 32 channels for up to 15 sites, one more per doubling of the
    smallest input side beyond 8 (16 sites: 3 blocks, 32: 4), so that the pools bring every input
    down to a few sites before the head.

    Every block is 32 wide: with a first block of 16 (the earlier default) the default ``fit``
    gave, mean (worst) over seeds, 16 first against 32 first: MNIST-1D 0.946 (0.937) against
    0.950 (0.942), 10 seeds each; digits on a 16x16 canvas 0.950 (0.938, 6 seeds) against 0.962
    (0.949, 10 seeds), on a 32x32 canvas 0.902 (0.878, 6 seeds) against 0.916 (0.889, 10 seeds);
    the 8x8 digits 0.986 either way (10 seeds)."""
    smallest = min(input_shape[1:])
    return (32, 32) + (32,) * max(0, int(math.floor(math.log2(max(smallest, 8) / 8))))


def pool_schedule(input_shape, channels, kernel_size=3, stride=1, padding="same", pool=2) -> list[bool]:
    """Which blocks end with a pool: spread evenly over the blocks (like VGG's stages).

    A stack can pool only as often as its sites allow (8 sites and width-2 pools: 3 times). With
    no more blocks than that, every block pools; with more, the pools are spaced evenly and the
    last block pools, so a deep stack keeps several sites in its middle blocks instead of ending
    in a run of blocks on a single site (whose 3x3 windows see one tap of 9).
    """
    if pool is None or pool <= 1:
        return [False] * len(channels)
    shape, possible = tuple(input_shape), 0
    for width in channels:  # how many pools fit: pool greedily after every block
        geo = make_geometry(shape[1:], kernel_size, stride, padding, 1)
        shape = (width,) + tuple(geo.out_sites)
        if min(shape[1:]) >= pool:
            shape = (width,) + tuple(s // pool for s in shape[1:])
            possible += 1
    depth = len(channels)
    if depth <= possible:
        return [True] * depth
    return [(i + 1) * possible // depth > i * possible // depth for i in range(depth)]


def _centring(activation, centring):
    """Whether blocks pass d - mu forward: by default for the binary ensemble (sigmoid) only."""
    if centring is None:
        return activation == "sigmoid"
    if not isinstance(centring, (bool, np.bool_)):
        raise TypeError(f"centring: expected True, False or None (centre the sigmoid blocks), got {centring!r}")
    return bool(centring)


def build(coupling="shared", input_shape=(1, 8, 8), n_classes=10, *, channels=None, kernel_size=3, stride=1,
          padding="same", pool=2, pool_mode="max", hidden=(), activation="sigmoid", centring=None, init=None,
          head="dense", head_kernel=None, preset=None, skips=True, dtype=np.float32, seed=0,
          **fit_defaults) -> Model:
    """A classifier whose coupling blocks are all of one family.

    Each entry of ``channels`` adds a block: a coupling, its activation, a pool (spread evenly over
    the blocks as far as the sites allow, see :func:`pool_schedule`), and (for the sigmoid, by
    default) a :class:`Centring` that passes d - mu forward.

    Parameters
    ----------
    coupling : {"shared", "local", "full", "sparse"}
        How each block's couplings are tied: convolution, untied windows, every site to every site,
        or random non-local windows of a window's fan-in (the control for sparsity without locality).
    input_shape : tuple
        (C, L) or (C, H, W).
    n_classes : int
        Number of classes (at least 2).
    channels : tuple of int, optional
        Output channels of the blocks; None gives ``default_channels(input_shape)``.
    kernel_size, stride, padding
        The window of every block; padding an int, pairs, "valid", "same", "full" or "circular".
    pool : int or None
        Width of the max/avg pools between blocks (None: no pool); ``pool_mode`` "max" or "avg".
    hidden : tuple of int
        Fully coupled hidden layers of the head.
    activation : {"sigmoid", "tanh", "relu", "softplus", None}
        The blocks' activation; "sigmoid" is the binary ensemble's marginal.
    centring : bool, optional
        Pass d - mu forward after each block; None: for the sigmoid only.
    init : {"variance", "fan_in", "glorot"}, optional
        "variance" scales Glorot's weights by the marginal's inverse slope at h = 0 (and by the
        window's share of real sites), so that the field keeps its variance through depth;
        "fan_in" does the same from the forward variance 1 / fan_in (LeCun et al. 1998), larger
        where a block widens; "glorot" leaves the layers' own weights. None: "fan_in" for the
        LeNet-5 preset (its blocks widen 1 -> 6 -> 16 -> 120 channels), "variance" otherwise; both
        chosen by experiments/trainability.py.
    head : {"dense", "gap", "sites"}
        Flatten then logits; the mean over sites of each channel (Lin et al. 2014) then logits; or a
        1-channel coupling (window ``head_kernel``) whose output sites are the classes.
    preset : {"lenet5", "vgg", "resnet", "inception"}, optional
        "lenet5": LeCun et al.'s C1-S2-C3-S4-C5-F6 stack (inputs padded up to 32 sites). The classic
        networks of seed 002, small enough for digits, MNIST-1D and a 32x32 canvas (see
        :func:`classic_channels`; ``channels`` overrides the widths, each run of equal widths is a
        stage that ends with a pool): "vgg" stacks of 3x3 couplings (Simonyan & Zisserman 2015) and a
        dense head; "resnet" a 3x3 stem and residual blocks y = F(x) + x, F two 3x3 couplings, a 1x1
        shortcut where the width changes (He et al. 2016), global average pool and logits;
        "inception" a 3x3 stem and Inception modules (1x1 | 1x1-3x3 | 1x1-5x5 | pool-1x1, joined
        along channels; Szegedy et al. 2015), global average pool and logits.
    skips : bool
        False builds preset "resnet" without its shortcuts: the same couplings in a plain stack (the
        control for what the skips buy in depth).
    dtype, seed
        Float type of the parameters; seed of every layer's initialisation.
    **fit_defaults
        epochs, batch_size, lr, optimizer, weight_decay, schedule: the defaults of ``Model.fit``.

    Returns
    -------
    Model
    """
    choice(coupling, "coupling", FAMILIES)
    choice(head, "head", HEADS)
    if init is not None:
        choice(init, "init", INITS)
    dtype = check_dtype(dtype)
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) not in (2, 3):
        raise ValueError(f"input_shape: expected (C, L) or (C, H, W), got {input_shape!r}")
    input_shape = tuple(as_int(s, "input_shape", 1) for s in input_shape)
    n_classes = as_int(n_classes, "n_classes", 2)
    unknown = set(fit_defaults) - set(FIT_DEFAULTS)
    if unknown:
        raise TypeError(f"build: unexpected keyword(s) {sorted(unknown)}")
    _check_fit_defaults(fit_defaults)
    centre = _centring(activation, centring)
    nd = len(input_shape) - 1
    if not isinstance(skips, (bool, np.bool_)):
        raise TypeError(f"skips: expected True or False, got {skips!r}")
    if not skips and preset != "resnet":
        raise ValueError(f"skips: False removes the shortcuts of preset='resnet'; got preset={preset!r}")
    if preset is not None:
        choice(preset, "preset", PRESETS)
        if preset == "lenet5":
            return _lenet5(coupling, input_shape, n_classes, activation, centre, init or "fan_in", dtype, seed,
                           fit_defaults)
        return _classic(preset, coupling, input_shape, n_classes, channels, activation, centre, init or "variance",
                        bool(skips), dtype, seed, fit_defaults)
    init = init or "variance"
    if channels is None:
        channels = default_channels(input_shape)
    channels = channels if isinstance(channels, (tuple, list)) else (channels,)
    channels = tuple(as_int(c, "channels", 1) for c in channels)
    hidden = tuple(as_int(h, "hidden", 1) for h in (hidden if isinstance(hidden, (tuple, list)) else (hidden,)))
    if pool is not None:
        pool = as_int(pool, "pool", 1)
    choice(pool_mode, "pool_mode", ("max", "avg"))
    seeds = iter(_seeds(seed, len(channels) + len(hidden) + 2))
    pooled = pool_schedule(input_shape, channels, kernel_size, stride, padding, pool)
    layers, shape = [], input_shape
    for width, pooling in zip(channels, pooled):
        layer, shape = _coupling_block(coupling, shape, width, kernel_size, stride, padding, activation, dtype,
                                       next(seeds), init)
        layers.append(layer)
        if pooling and min(shape[1:]) >= pool:
            layers.append(_pool(nd, pool, pool_mode))
            shape = tuple(layers[-1].output_shape(shape))
        if centre:
            layers.append(Centring(shape[0], dtype=dtype))
    from . import Flatten, FullCoupled, GlobalAvgPool

    if head == "sites":
        k = kernel_size if head_kernel is None else head_kernel
        layer, shape = _coupling_block(coupling, shape, 1, k, 1, 0, None, dtype, next(seeds))
        n_sites = math.prod(shape[1:])
        if n_sites != n_classes:
            raise ValueError(f"n_classes: head='sites' gives {n_sites} output sites {shape[1:]}, but n_classes is "
                             f"{n_classes}")
        layers += [layer, Flatten()]
    else:
        layers.append(GlobalAvgPool() if head == "gap" else Flatten())
        features = shape[0] if head == "gap" else math.prod(shape)
        for width in hidden:
            layers.append(_hidden(features, width, activation, init, dtype, next(seeds)))
            features = width
            if centre:
                layers.append(Centring(width, dtype=dtype))
        layers.append(FullCoupled(features, n_classes, activation=None, dtype=dtype, seed=next(seeds)))
    meta = {"coupling": coupling, "arch": {"channels": list(channels), "kernel_size": kernel_size, "stride": stride,
                                           "padding": padding, "pool": pool, "pool_mode": pool_mode,
                                           "hidden": list(hidden), "activation": activation, "centring": centre,
                                           "init": init, "head": head},
            "seed": seed}
    return Model(layers, input_shape, n_classes, dtype=dtype, name=f"{coupling}", meta=meta,
                 fit_defaults={**FIT_DEFAULTS, **fit_defaults})


def _hidden(features, width, activation, init, dtype, seed):
    """A fully coupled hidden layer, its weights scaled as in ``_coupling_block``."""
    from . import FullCoupled

    layer = FullCoupled(features, width, activation=activation, dtype=dtype, seed=seed)
    if init in ("variance", "fan_in"):
        scale = INIT_GAIN[activation] * (_fan_in_factor(activation, features, width) if init == "fan_in" else 1.0)
        layer.params["J"] *= np.asarray(scale, dtype=layer.params["J"].dtype)
    return layer


def _lenet5(coupling, input_shape, n_classes, activation, centre, init, dtype, seed, fit_defaults):
    """LeNet-5 (LeCun et al. 1998): C1 6@5 - S2 avg2 - C3 16@5 - S4 avg2 - C5 120@5 - F6 84 - out,
    with a Centring after each block when ``centre``."""
    from . import Flatten, FullCoupled

    nd = len(input_shape) - 1
    pad = max(0, math.ceil((32 - min(input_shape[1:])) / 2))
    seeds = iter(_seeds(seed, 6))
    layers, shape = [], input_shape
    for width, padding in ((6, pad), (16, 0)):
        layer, shape = _coupling_block(coupling, shape, width, 5, 1, padding, activation, dtype, next(seeds), init)
        layers += [layer, _pool(nd, 2, "avg")]
        shape = tuple(layers[-1].output_shape(shape))
        if centre:
            layers.append(Centring(shape[0], dtype=dtype))
    layer, shape = _coupling_block(coupling, shape, 120, min(5, min(shape[1:])), 1, 0, activation, dtype,
                                   next(seeds), init)
    layers += [layer, Flatten()]
    if centre:
        layers.append(Centring(math.prod(shape), dtype=dtype))
    layers.append(_hidden(math.prod(shape), 84, activation, init, dtype, next(seeds)))
    if centre:
        layers.append(Centring(84, dtype=dtype))
    layers.append(FullCoupled(84, n_classes, activation=None, dtype=dtype, seed=next(seeds)))
    meta = {"coupling": coupling, "arch": {"preset": "lenet5", "activation": activation, "centring": centre,
                                           "init": init}, "seed": seed}
    return Model(layers, input_shape, n_classes, dtype=dtype, name=f"lenet5-{coupling}", meta=meta,
                 fit_defaults={**FIT_DEFAULTS, **fit_defaults})


# ---------------------------------------------------------------- seed 002's classic networks


def classic_channels(preset, input_shape) -> tuple[int, ...]:
    """The default widths of a classic preset: one stage per halving of the smallest side that
    leaves at least 2 sites, at most 3 stages, 16 * 2^s channels in stage s. "vgg" has two 3x3
    couplings per stage, "resnet" two residual blocks, "inception" one module of twice the width
    (digits' 8 x 8: 2 stages; MNIST-1D's 40 and a 32 x 32 canvas: 3)."""
    stages = max(1, min(3, int(math.floor(math.log2(max(min(input_shape[1:]), 2) / 2)))))
    widths = [16 * 2 ** s for s in range(stages)]
    if preset == "inception":
        return tuple(2 * w for w in widths)
    return tuple(w for w in widths for _ in range(2))


def _stage_ends(channels) -> list[bool]:
    """A stage is a run of equal widths; the last block of each ends with a pool."""
    return [i + 1 == len(channels) or channels[i + 1] != channels[i] for i in range(len(channels))]


def _conv_layers(coupling, shape, width, kernel, activation, centre, dtype, seed, init):
    """A coupling ("same" padding) and, when centring, its Centring: the layers and the output shape."""
    layer, shape = _coupling_block(coupling, shape, width, kernel, 1, "same", activation, dtype, seed, init)
    return [layer] + ([Centring(width, dtype=dtype)] if centre else []), shape


def _residual_block(coupling, shape, width, activation, centre, dtype, seeds, init, skips):
    """y = F(x) + shortcut(x), F = [3x3 coupling, Centring, 3x3 coupling, Centring]: each coupling's
    marginals centred (d - mu), so F(x) has mean zero per channel and the sum keeps the scale of x
    instead of adding 1/2 per block. The shortcut is a 1x1 coupling (activation None) where the
    width changes, the identity otherwise. ``skips`` False: the layers of F alone."""
    from .containers import Residual

    F, out = _conv_layers(coupling, shape, width, 3, activation, centre, dtype, next(seeds), init)
    more, out = _conv_layers(coupling, out, width, 3, activation, centre, dtype, next(seeds), init)
    F += more
    shortcut_seed = next(seeds)
    if not skips:
        return F, out
    shortcut = None
    if shape[0] != width:
        layer, _ = _coupling_block(coupling, shape, width, 1, 1, 0, None, dtype, shortcut_seed, init)
        shortcut = [layer]
    return [Residual(F, shortcut)], out


def inception_widths(width) -> dict:
    """The branch widths of a module with ``width`` output channels, in the proportions of
    Szegedy et al.'s module 3a (256 = 64 | 96->128 | 16->32 | pool->32)."""
    return {"1x1": max(1, width // 4), "3x3_reduce": max(1, 3 * width // 8), "3x3": max(1, width // 2),
            "5x5_reduce": max(1, width // 16), "5x5": max(1, width // 8), "pool_proj": max(1, width // 8)}


def inception_module(coupling, shape, width, activation, centre, dtype, seeds, init):
    """Four branches on the same x, joined along channels: 1x1 | 1x1 -> 3x3 | 1x1 -> 5x5 |
    3x3 max pool (stride 1) -> 1x1; the 1x1 reductions ("bottlenecks") make the wide windows cheap.
    A Centring after the join. Returns ([Concat, Centring], output shape)."""
    from .containers import Concat

    nd = len(shape) - 1
    if coupling == "sparse" and 5 ** nd > math.prod(shape[1:]):
        raise ValueError(f"coupling: 'sparse' draws as many distinct input sites as a window holds, {5 ** nd} for the "
                         f"5-wide branch of an Inception module, but this module's input {shape} has only "
                         f"{math.prod(shape[1:])} sites; give fewer stages (channels) or a larger input")
    w = inception_widths(width)
    branches = []
    b1, _ = _conv_layers(coupling, shape, w["1x1"], 1, activation, False, dtype, next(seeds), init)
    branches.append(b1)
    for reduce_key, key, k in (("3x3_reduce", "3x3", 3), ("5x5_reduce", "5x5", 5)):
        red, mid = _conv_layers(coupling, shape, w[reduce_key], 1, activation, centre, dtype, next(seeds), init)
        wide, _ = _conv_layers(coupling, mid, w[key], k, activation, False, dtype, next(seeds), init)
        branches.append(red + wide)
    pool = (MaxPool1d if nd == 1 else MaxPool2d)(3, stride=1, padding=1)
    proj, _ = _conv_layers(coupling, shape, w["pool_proj"], 1, activation, False, dtype, next(seeds), init)
    branches.append([pool] + proj)
    module = Concat(branches)
    out = tuple(module.output_shape(shape))
    return [module] + ([Centring(out[0], dtype=dtype)] if centre else []), out


def _classic(preset, coupling, input_shape, n_classes, channels, activation, centre, init, skips, dtype, seed,
             fit_defaults):
    """The "vgg", "resnet" and "inception" presets (see ``build``)."""
    from . import Flatten, FullCoupled, GlobalAvgPool

    if channels is None:
        channels = classic_channels(preset, input_shape)
    channels = channels if isinstance(channels, (tuple, list)) else (channels,)
    channels = tuple(as_int(c, "channels", 1) for c in channels)
    nd = len(input_shape) - 1
    seeds = iter(_seeds(seed, 4 + 8 * len(channels)))
    layers, shape = [], input_shape
    if preset in ("resnet", "inception"):  # a 3x3 stem from the input's channels to the first width
        more, shape = _conv_layers(coupling, shape, channels[0], 3, activation, centre, dtype, next(seeds), init)
        layers += more
    for width, ends in zip(channels, _stage_ends(channels)):
        if preset == "vgg":
            more, shape = _conv_layers(coupling, shape, width, 3, activation, centre, dtype, next(seeds), init)
        elif preset == "resnet":
            more, shape = _residual_block(coupling, shape, width, activation, centre, dtype, seeds, init, skips)
        else:
            more, shape = inception_module(coupling, shape, width, activation, centre, dtype, seeds, init)
        layers += more
        if ends and min(shape[1:]) >= 2:
            layers.append(_pool(nd, 2, "max"))
            shape = tuple(layers[-1].output_shape(shape))
    if preset == "vgg":
        layers.append(Flatten())
        features = math.prod(shape)
    else:
        layers.append(GlobalAvgPool())
        features = shape[0]
    layers.append(FullCoupled(features, n_classes, activation=None, dtype=dtype, seed=next(seeds)))
    meta = {"coupling": coupling, "arch": {"preset": preset, "channels": list(channels), "activation": activation,
                                           "centring": centre, "init": init, "skips": skips}, "seed": seed}
    name = f"{preset}-{coupling}" + ("" if skips else "-noskips")
    return Model(layers, input_shape, n_classes, dtype=dtype, name=name, meta=meta,
                 fit_defaults={**FIT_DEFAULTS, **fit_defaults})
