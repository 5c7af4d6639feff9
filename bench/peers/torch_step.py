"""The bench's PyTorch peer: times the SimSiam training steps of bench/cases/hvp-step.ts in PyTorch on
this machine's CPU, with torch's threads set to the number of cores, or on its CUDA GPU ("device":
"cuda", cudnn.benchmark on), there in fp32 or under torch.autocast ("amp": "bf16" or "fp16", the
latter with a GradScaler).

Usage: python3 torch_step.py SPEC_JSON   (or the spec on stdin). Prints one JSON object: the median and
per-repetition milliseconds of whole steps, the median milliseconds of their view generation, the
network's parameter count, torch's thread count and version (with "count_only": the parameter count
alone); or {"error": ...} with exit status 1. A nonzero "expect_params" other than the network's
parameter count is an error: the two sides would not time the same network.

Each timed step does what our hvpStep does, in the same order:
- views: per-view parameters drawn in Python (RandomResizedCrop as torchvision draws it, flip, colour
  jitter with probability 0.8, grayscale on RGB), then all V·B views rendered in one batched pass:
  crop + resize + flip as one affine_grid/grid_sample (bilinear), brightness, contrast, saturation,
  hue (a YIQ rotation), grayscale, and above 32 px a Gaussian blur with probability 0.5 (sigma
  uniform in [0.1, 2], a kernel of about 10% of the size, separable, reflected border), then
  normalisation. The jitter order is fixed here (ours draws it per view).
- mode "hvp": the selection forward of the V views (at select_res when set) through the model, one
  view at a time, under no_grad, with train-mode BatchNorm on batch statistics and the running
  statistics untouched; SimSiam pair scores -1/2[cos(p_i, z_j) + cos(p_j, z_i)] of all V(V-1)/2 pairs;
  the argmax (hardest) pair per sample; a gather of the two chosen views.
  mode "random": views 0 and 1 (V = 2).
- the ordinary SimSiam step on the two views: each view through the model, the symmetric
  negative-cosine loss with stop-gradient, backward, SGD (momentum, weight decay) with a cosine rate
  on the backbone and projector and the base rate on the predictor.
The network is the ResNet-18 or ResNet-50 of models/resnet.ts ("arch"; the small-image stem, 3x3
stride 1 without max-pool, or with "small_image": false torchvision's 7x7 stride-2 stem and max-pool;
the given stage widths, no fc) with the projector and predictor of models/heads.ts.
"""

import json
import math
import os
import random
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

SPEC_KEYS = {
    'widths': list, 'channels': int, 'size': int, 'batch': int, 'views': int, 'mode': str,
    'select_res': int, 'dim': int, 'pred_dim': int, 'lr': float, 'momentum': float,
    'weight_decay': float, 'zero_init_residual': bool, 'warmup': int, 'reps': int,
    'expect_params': int, 'seed': int, 'count_only': bool, 'device': str, 'amp': str, 'arch': str,
    'small_image': bool,
}
OPTIONAL = {'select_res': 0, 'zero_init_residual': False, 'expect_params': 0, 'seed': 0, 'count_only': False, 'device': 'cpu', 'amp': '',
            'arch': 'resnet18', 'small_image': True}
AMP_DTYPES = {'bf16': torch.bfloat16, 'fp16': torch.float16}
MAX_SIZE_WITHOUT_BLUR = 32
BLUR_P, BLUR_SIGMA = 0.5, (0.1, 2.0)
MEAN, STD = 0.5, 0.25


def parse_spec(text):
    spec = json.loads(text)
    if not isinstance(spec, dict):
        raise ValueError('the spec is a JSON object')
    unknown = set(spec) - set(SPEC_KEYS)
    if unknown:
        raise ValueError(f'unknown spec keys {sorted(unknown)}; known: {sorted(SPEC_KEYS)}')
    out = dict(OPTIONAL)
    out.update(spec)
    for key, kind in SPEC_KEYS.items():
        if key not in out:
            raise ValueError(f'spec: missing {key}')
        value = out[key]
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) if kind is float else isinstance(value, kind)
        if kind is int and isinstance(value, bool):
            ok = False
        if not ok:
            raise ValueError(f'spec: {key} must be {kind.__name__}, got {value!r}')
    if len(out['widths']) != 4 or not all(isinstance(w, int) and w > 0 for w in out['widths']):
        raise ValueError(f"spec: widths must be four positive integers, got {out['widths']}")
    if out['mode'] not in ('random', 'hvp'):
        raise ValueError(f"spec: mode must be random or hvp, got {out['mode']!r}")
    if out['mode'] == 'random' and out['views'] != 2:
        raise ValueError(f"spec: mode random trains on views 0 and 1 and needs views 2, got {out['views']}")
    if out['views'] < 2 or out['batch'] < 2 or out['reps'] < 1 or out['warmup'] < 0:
        raise ValueError('spec: needs views >= 2, batch >= 2, reps >= 1, warmup >= 0')
    if out['device'] not in ('cpu', 'cuda'):
        raise ValueError(f"spec: device must be cpu or cuda, got {out['device']!r}")
    if out['amp'] not in ('', *AMP_DTYPES):
        raise ValueError(f"spec: amp must be '', bf16 or fp16, got {out['amp']!r}")
    if out['amp'] and out['device'] != 'cuda':
        raise ValueError('spec: amp (autocast) is timed on cuda only')
    if out['device'] == 'cuda' and not torch.cuda.is_available():
        raise ValueError(f'spec: device cuda, but torch {torch.__version__} sees no CUDA device')
    if out['channels'] not in (1, 3):
        raise ValueError(f"spec: channels must be 1 or 3, got {out['channels']}")
    if out['arch'] not in ARCHS:
        raise ValueError(f"spec: arch must be one of {sorted(ARCHS)}, got {out['arch']!r}")
    return out


# ---- the network: models/resnet.ts (torchvision's layout) and models/heads.ts

def conv(in_c, out_c, k, stride):
    return nn.Conv2d(in_c, out_c, k, stride=stride, padding=(k - 1) // 2, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride):
        super().__init__()
        self.conv1 = conv(inplanes, planes, 3, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv(planes, planes, 3, 1)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(conv(inplanes, planes, 1, stride), nn.BatchNorm2d(planes))

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride):
        super().__init__()
        out = planes * 4
        self.conv1 = conv(inplanes, planes, 1, 1)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv(planes, planes, 3, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv(planes, out, 1, 1)
        self.bn3 = nn.BatchNorm2d(out)
        self.downsample = None
        if stride != 1 or inplanes != out:
            self.downsample = nn.Sequential(conv(inplanes, out, 1, stride), nn.BatchNorm2d(out))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


# torchvision's resnet18 and resnet50: block type and blocks per stage.
ARCHS = {'resnet18': (BasicBlock, [2, 2, 2, 2]), 'resnet50': (Bottleneck, [3, 4, 6, 3])}


class ResNet(nn.Module):
    """models/resnet.ts: torchvision's ResNet without fc; the small-image stem (3x3 stride 1, no
    max-pool) or the standard one (7x7 stride 2, 3x3 max-pool)."""

    def __init__(self, arch, in_channels, widths, small_image, zero_init_residual):
        super().__init__()
        block, counts = ARCHS[arch]
        self.conv1 = conv(in_channels, widths[0], 3, 1) if small_image else nn.Conv2d(in_channels, widths[0], 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.small_image = small_image
        inplanes = widths[0]
        for s, (planes, count) in enumerate(zip(widths, counts)):
            blocks = []
            for b in range(count):
                blocks.append(block(inplanes, planes, 2 if s > 0 and b == 0 else 1))
                inplanes = planes * block.expansion
            if zero_init_residual:
                for m in blocks:
                    nn.init.zeros_((m.bn3 if block is Bottleneck else m.bn2).weight)
            self.add_module(f'layer{s + 1}', nn.Sequential(*blocks))
        self.feature_dim = inplanes

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        if not self.small_image:
            x = F.max_pool2d(x, 3, 2, 1)
        for s in range(1, 5):
            x = getattr(self, f'layer{s}')(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


class SimSiam(nn.Module):
    def __init__(self, spec):
        super().__init__()
        self.backbone = ResNet(spec['arch'], spec['channels'], spec['widths'], spec['small_image'], spec['zero_init_residual'])
        f, dim, pred = self.backbone.feature_dim, spec['dim'], spec['pred_dim']
        self.projector = nn.Sequential(
            nn.Linear(f, f, bias=False), nn.BatchNorm1d(f), nn.ReLU(inplace=True),
            nn.Linear(f, f, bias=False), nn.BatchNorm1d(f), nn.ReLU(inplace=True),
            nn.Linear(f, dim), nn.BatchNorm1d(dim, affine=False),
        )
        # The affine-free BN after it cancels this bias, so SimSiam freezes it (heads.ts does the same).
        self.projector[6].bias.requires_grad = False
        self.predictor = nn.Sequential(
            nn.Linear(dim, pred, bias=False), nn.BatchNorm1d(pred), nn.ReLU(inplace=True), nn.Linear(pred, dim),
        )

    def embed(self, x):
        z = self.projector(self.backbone(x))
        return z, self.predictor(z)


def batch_stats_only(model, on):
    """Train-mode BN that normalises with batch statistics and leaves the running ones as they are."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.track_running_stats = not on


# ---- views: hvp/views (params.ts draws, views.wgsl renders)

def crop_box(rng, h, w, scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3)):
    """torchvision's RandomResizedCrop.get_params: (top, left, height, width)."""
    area = h * w
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        cw = int(round(math.sqrt(target * aspect)))
        ch = int(round(math.sqrt(target / aspect)))
        if 0 < cw <= w and 0 < ch <= h:
            return rng.randint(0, h - ch), rng.randint(0, w - cw), ch, cw
    in_ratio = w / h
    if in_ratio < ratio[0]:
        cw, ch = w, int(round(w / ratio[0]))
    elif in_ratio > ratio[1]:
        ch, cw = h, int(round(h * ratio[1]))
    else:
        cw, ch = w, h
    return (h - ch) // 2, (w - cw) // 2, ch, cw


def draw_params(rng, n, h, w, rgb, blur):
    """Per view: affine theta of crop + flip, jitter factors (brightness, contrast, saturation, hue), gray
    flag, blur sigma in output pixels (0: none; drawn only when `blur`, above 32 px as in pipelines.ts)."""
    theta, factors, gray, sigma = [], [], [], []
    for _ in range(n):
        top, left, ch, cw = crop_box(rng, h, w)
        sx = cw / w * (-1 if rng.random() < 0.5 else 1)
        theta.append([[sx, 0.0, (2 * left + cw) / w - 1], [0.0, ch / h, (2 * top + ch) / h - 1]])
        if rng.random() < 0.8:
            factors.append([rng.uniform(0.6, 1.4), rng.uniform(0.6, 1.4),
                            rng.uniform(0.6, 1.4) if rgb else 1.0, rng.uniform(-0.1, 0.1) if rgb else 0.0])
        else:
            factors.append([1.0, 1.0, 1.0, 0.0])
        gray.append(1.0 if rgb and rng.random() < 0.2 else 0.0)
        on = blur and rng.random() < BLUR_P
        sigma.append(rng.uniform(*BLUR_SIGMA) if on else 0.0)
    return torch.tensor(theta), torch.tensor(factors), torch.tensor(gray), torch.tensor(sigma)


def blur_kernel_size(size):
    """pipelines.ts's blurKernelSize: about 10% of the size, odd (224 -> 23)."""
    return 2 * ((size // 10) // 2) + 1


def gaussian_blur(x, sigma):
    """Per-view separable Gaussian blur (reflected border); sigma 0 leaves a view as it is."""
    n, c, h, w = x.shape
    k = blur_kernel_size(h)
    r = torch.arange(k, device=x.device, dtype=x.dtype) - k // 2
    s = sigma.to(x.device, x.dtype).clamp_min(1e-6).view(n, 1)
    g = torch.exp(-0.5 * (r.view(1, k) / s) ** 2)
    g = torch.where(sigma.to(x.device).view(n, 1) > 0, g / g.sum(1, keepdim=True), (r == 0).to(x.dtype).expand(n, k))
    g = g.repeat_interleave(c, 0)
    y = F.pad(x.reshape(1, n * c, h, w), (k // 2, k // 2, k // 2, k // 2), mode='reflect')
    y = F.conv2d(y, g.view(n * c, 1, k, 1), groups=n * c)
    y = F.conv2d(y, g.view(n * c, 1, 1, k), groups=n * c)
    return y.view(n, c, h, w)


LUMA = torch.tensor([0.299, 0.587, 0.114])


def luminance(x):
    return (x * LUMA.to(x.device).view(1, 3, 1, 1)).sum(1, keepdim=True) if x.shape[1] == 3 else x


def hue_rotation(angles):
    """[N, 3, 3] RGB -> RGB matrices rotating hue by `angles` (turns) in YIQ space."""
    to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
    c, s = torch.cos(2 * math.pi * angles), torch.sin(2 * math.pi * angles)
    rot = torch.zeros(len(angles), 3, 3)
    rot[:, 0, 0] = 1
    rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = c, -s, s, c
    return torch.linalg.inv(to_yiq) @ rot @ to_yiq


def render(images, index, params, size):
    """[N, C, size, size] normalised views of images[index] with per-view params."""
    theta, factors, gray, sigma = (t.to(images.device) for t in params)
    src = images.index_select(0, index).float().div_(255)
    n, c = src.shape[:2]
    grid = F.affine_grid(theta, [n, c, size, size], align_corners=False)
    x = F.grid_sample(src, grid, mode='bilinear', padding_mode='border', align_corners=False)
    col = lambda v: v.view(n, 1, 1, 1)
    x = (x * col(factors[:, 0])).clamp_(0, 1)
    m = luminance(x).mean((1, 2, 3), keepdim=True)
    x = ((x - m) * col(factors[:, 1]) + m).clamp_(0, 1)
    if c == 3:
        g = luminance(x)
        x = ((x - g) * col(factors[:, 2]) + g).clamp_(0, 1)
        x = torch.einsum('nij,njhw->nihw', hue_rotation(factors[:, 3].cpu()).to(x.device), x).clamp_(0, 1)
        x = torch.lerp(x, luminance(x).expand_as(x), col(gray))
    if size > MAX_SIZE_WITHOUT_BLUR and bool((sigma > 0).any()):
        x = gaussian_blur(x, sigma)
    return x.sub_(MEAN).div_(STD)


# ---- the step

def pair_scores(p, z, i, j):
    """[C, B]: -1/2[cos(p_i, z_j) + cos(p_j, z_i)] for the pairs (i, j), p and z [V, B, D]."""
    pn = p / p.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    zn = z / z.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    return -0.5 * ((pn[i] * zn[j]).sum(-1) + (pn[j] * zn[i]).sum(-1))


def simsiam_loss(p1, p2, z1, z2):
    return -0.5 * (F.cosine_similarity(p1, z2.detach(), eps=1e-8).mean() + F.cosine_similarity(p2, z1.detach(), eps=1e-8).mean())


def make_step(spec, model, optimizer, images, rng):
    v, b, size = spec['views'], spec['batch'], spec['size']
    dev = images.device
    pairs = [(a, c) for a in range(v) for c in range(a + 1, v)]
    pi = torch.tensor([a for a, _ in pairs], device=dev)
    pj = torch.tensor([c for _, c in pairs], device=dev)
    index = torch.arange(b, device=dev).repeat(v)
    rows = torch.arange(b, device=dev)
    rgb = spec['channels'] == 3
    total = 1000
    cuda = dev.type == 'cuda'
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    amp = AMP_DTYPES.get(spec['amp'])
    # The forward passes under autocast (fp32 when amp is off); fp16 scales the loss against underflow.
    autocast = lambda: torch.autocast('cuda', dtype=amp, enabled=amp is not None) if cuda else torch.autocast('cpu', enabled=False)
    scaler = torch.cuda.amp.GradScaler() if amp is torch.float16 else None

    def step(k):
        sync()
        t0 = time.perf_counter()
        params = draw_params(rng, v * b, images.shape[2], images.shape[3], rgb, size > MAX_SIZE_WITHOUT_BLUR)
        views = render(images, index, params, size).view(v, b, *images.shape[1:2], size, size)
        if spec['mode'] == 'hvp':
            sel = views
            if spec['select_res']:
                sel = render(images, index, params, spec['select_res']).view(v, b, -1, spec['select_res'], spec['select_res'])
            sync()
            views_ms = (time.perf_counter() - t0) * 1e3
            batch_stats_only(model, True)
            with torch.no_grad(), autocast():
                out = [model.embed(sel[a]) for a in range(v)]
            batch_stats_only(model, False)
            z = torch.stack([o[0] for o in out]).float()
            p = torch.stack([o[1] for o in out]).float()
            choice = pair_scores(p, z, pi, pj).argmax(0)
            x1, x2 = views[pi[choice], rows], views[pj[choice], rows]
        else:
            sync()
            views_ms = (time.perf_counter() - t0) * 1e3
            x1, x2 = views[0], views[1]
        now = 0.5 * spec['lr'] * (1 + math.cos(math.pi * k / total))
        optimizer.param_groups[0]['lr'] = now
        with autocast():
            z1, p1 = model.embed(x1)
            z2, p2 = model.embed(x2)
        loss = simsiam_loss(p1.float(), p2.float(), z1.float(), z2.float())
        optimizer.zero_grad(set_to_none=True)
        if scaler:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        sync()
        return (time.perf_counter() - t0) * 1e3, views_ms

    return step


def median(xs):
    return sorted(xs)[len(xs) // 2]


def run(spec):
    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    torch.manual_seed(spec['seed'])
    rng = random.Random(spec['seed'])
    dev = torch.device(spec['device'])
    if dev.type == 'cuda':
        torch.backends.cudnn.benchmark = True
    model = SimSiam(spec)
    params = sum(p.numel() for p in model.parameters())
    if spec['count_only']:
        return {'params': params}
    if spec['expect_params'] and params != spec['expect_params']:
        raise ValueError(f"the PyTorch network has {params} parameters and ours {spec['expect_params']}: they are not the same network")
    model.to(dev).train()
    hyper = dict(lr=spec['lr'], momentum=spec['momentum'], weight_decay=spec['weight_decay'])
    trunk = list(model.backbone.parameters()) + list(model.projector.parameters())
    optimizer = torch.optim.SGD([{'params': trunk}, {'params': list(model.predictor.parameters())}], **hyper)
    images = torch.randint(0, 256, (spec['batch'], spec['channels'], spec['size'], spec['size']), dtype=torch.uint8).to(dev)
    step = make_step(spec, model, optimizer, images, rng)
    runs, views = [], []
    for k in range(spec['warmup'] + spec['reps']):
        ms, views_ms = step(k)
        if k >= spec['warmup']:
            runs.append(ms)
            views.append(views_ms)
    return {
        'median_ms': median(runs), 'min_ms': min(runs), 'runs_ms': runs, 'views_median_ms': median(views),
        'params': params, 'threads': torch.get_num_threads(), 'torch': torch.__version__,
        'device': spec['device'], 'amp': spec['amp'],
    }


def main():
    try:
        spec = parse_spec(sys.argv[1] if len(sys.argv) > 1 else sys.stdin.read())
        print(json.dumps(run(spec)))
    except Exception as e:  # the caller reads the reason from stdout
        print(json.dumps({'error': f'{type(e).__name__}: {e}'}))
        sys.exit(1)


if __name__ == '__main__':
    main()
