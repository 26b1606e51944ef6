"""Use a network found by nago in PyTorch, without nago.

    from nago_export import load_model
    net = load_model("export/")            # export/arch.json + export/weights.safetensors
    net.eval()
    logits = net(x)                        # x: float32 [N, C, H, W], normalised like in training
    logits = net(normalise(net, images))   # from uint8 images, where export.json has the statistics

`nago-report export --run runs/x --trial T --out export/` writes that directory. The network
is built from `arch.json` (schema ``nago.arch/2``) layer for layer as the trainer builds it
(crates/nago-arch documents every layer; crates/nago-train/src/net.rs is the Rust model), and
its parameters and buffers carry the trainer's names (``stem.0.conv.weight``,
``cells.3.graphs.0.ops.2.op.bn.running_mean``, ``classifier.bias``, ...), so
``load_state_dict`` takes the exported weights as they are.

Only ``torch`` is needed; safetensors files are read by a few lines of Python here (the
``safetensors`` package is not required).
"""

import json
import math
import os
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["NagoNet", "load_model", "normalise", "load_safetensors", "save_safetensors", "ARCH_SCHEMA"]

ARCH_SCHEMA = "nago.arch/2"
# Written by an older nago whose generator assigned stages and joined disconnected graphs
# differently: refused, as the Rust tools refuse them.
_OLD_ARCH_SCHEMAS = ("nago.arch/1",)

_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
    "U8": torch.uint8, "BOOL": torch.bool,
}
_NAMES = {v: k for k, v in _DTYPES.items()}

# Operation kernels (kh, kw) and whether they pool, as nago_space::Op defines them.
_OPS = {
    "conv3x3": ((3, 3), False), "conv5x5": ((5, 5), False), "conv1x1": ((1, 1), False),
    "conv3x1": ((3, 1), False), "conv1x3": ((1, 3), False),
    "avgpool3x3": ((3, 3), True), "avgpool5x5": ((5, 5), True),
}


def load_safetensors(path):
    """Reads a safetensors file into a dict of CPU tensors (name -> tensor)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    body = memoryview(data)[8 + n:]
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        dtype = _DTYPES[t["dtype"]]
        buf = bytearray(body[a:b])
        x = torch.frombuffer(buf, dtype=dtype) if b > a else torch.empty(0, dtype=dtype)
        out[name] = x.reshape(t["shape"]).clone()
    return out


def save_safetensors(tensors, path, metadata=None):
    """Writes a dict of tensors as a safetensors file (little-endian, header padded to 8)."""
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    chunks, off = [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        raw = t.view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": _NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        chunks.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for c in chunks:
            f.write(c)


class ConvBn(nn.Module):
    """``[ReLU ->] Conv(kh x kw, stride, padding (kh//2, kw//2), no bias) -> BN`` (affine BN)."""

    def __init__(self, cin, cout, kh, kw, stride=1, relu=True):
        super().__init__()
        self.relu = relu
        self.conv = nn.Conv2d(cin, cout, (kh, kw), stride=stride, padding=(kh // 2, kw // 2), bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1)

    def forward(self, x):
        if self.relu:
            x = F.relu(x)
        return self.bn(self.conv(x))


class Edge(nn.Module):
    """An input of a node: average-pooled by ``pool`` (kernel = stride = pool), then
    projected (``ReLU -> 1x1 conv -> BN``) where channels differ."""

    def __init__(self, e):
        super().__init__()
        self.src = e["from"]
        self.pool = int(e["pool"])
        p = e.get("project")
        self.proj = ConvBn(p["in_ch"], p["out_ch"], 1, 1) if p else None

    def forward(self, level_input, nodes):
        x = level_input if self.src is None else nodes[self.src]
        if self.pool > 1:
            x = F.avg_pool2d(x, self.pool, self.pool, 0, ceil_mode=False, count_include_pad=True)
        if self.proj is not None:
            x = self.proj(x)
        return x


class Merge(nn.Module):
    """A node's inputs combined: one input unchanged; ``sum`` = sum_i sigmoid(gate_i) x_i;
    ``attention`` = sum_i alpha_i x_i with alpha = softmax_i <GAP(x_i), v_i> / sqrt(C);
    ``concat`` = channel concatenation then ``ReLU -> 1x1 conv -> BN`` back to the width."""

    def __init__(self, m):
        super().__init__()
        edges = m["inputs"]
        # Submodules in0, in1, ... give the trainer's names (merge.in0.proj.conv.weight).
        self.n_inputs = len(edges)
        for k, e in enumerate(edges):
            self.add_module("in%d" % k, Edge(e))
        self.kind = m["kind"] if len(edges) > 1 else "single"
        k, c = len(edges), m["channels"]
        if self.kind == "sum":
            self.gate = nn.Parameter(torch.zeros(k))
        elif self.kind == "attention":
            self.attention = nn.Parameter(torch.zeros(k, c))
            self.scale = math.sqrt(c)
        elif self.kind == "concat":
            p = m["project"]
            self.concat = ConvBn(p["in_ch"], p["out_ch"], 1, 1)
        elif self.kind != "single":
            raise ValueError("unknown merge kind %r" % m["kind"])

    def forward(self, level_input, nodes):
        xs = [getattr(self, "in%d" % k)(level_input, nodes) for k in range(self.n_inputs)]
        if self.kind == "single":
            return xs[0]
        if self.kind == "sum":
            g = torch.sigmoid(self.gate)
            out = xs[0] * g[0]
            for i in range(1, len(xs)):
                out = out + xs[i] * g[i]
            return out
        if self.kind == "attention":
            logits = torch.stack([x.mean(dim=(2, 3)) @ self.attention[i] for i, x in enumerate(xs)], 1)
            alpha = torch.softmax(logits / self.scale, dim=1)
            out = xs[0] * alpha[:, 0].view(-1, 1, 1, 1)
            for i in range(1, len(xs)):
                out = out + xs[i] * alpha[:, i].view(-1, 1, 1, 1)
            return out
        return self.concat(torch.cat(xs, 1))


def _mean(nodes, outputs):
    out = nodes[outputs[0]]
    for o in outputs[1:]:
        out = out + nodes[o]
    return out if len(outputs) == 1 else out / len(outputs)


class OpNode(nn.Module):
    """An operation: ``ReLU -> Conv -> BN`` or ``AvgPool(k, stride 1, pad k//2,
    count_include_pad=False)``, applied to the merge of its inputs."""

    def __init__(self, o, channels):
        super().__init__()
        self.merge = Merge(o["merge"])
        (kh, kw), pool = _OPS[o["op"]]
        self.pool = kh if pool else 0
        if not pool:
            self.op = ConvBn(channels, o["channels"], kh, kw)

    def forward(self, level_input, nodes):
        x = self.merge(level_input, nodes)
        if self.pool:
            return F.avg_pool2d(x, self.pool, 1, self.pool // 2, ceil_mode=False, count_include_pad=False)
        return self.op(x)


class OpGraph(nn.Module):
    def __init__(self, g, channels):
        super().__init__()
        self.merge = Merge(g["merge"])
        self.ops = nn.ModuleList([OpNode(o, channels) for o in g["ops"]])
        self.outputs = list(g["outputs"])

    def forward(self, cell_input, graphs):
        x = self.merge(cell_input, graphs)
        ops = []
        for o in self.ops:
            ops.append(o(x, ops))
        return _mean(ops, self.outputs)


class Cell(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.merge = Merge(c["merge"])
        self.graphs = nn.ModuleList([OpGraph(g, c["channels"]) for g in c["opgraphs"]])
        self.outputs = list(c["outputs"])

    def forward(self, stem_out, cells):
        x = self.merge(stem_out, cells)
        graphs = []
        for g in self.graphs:
            graphs.append(g(x, graphs))
        return _mean(graphs, self.outputs)


class NagoNet(nn.Module):
    """The network an ``arch.json`` describes: stem, cells (op-graphs of operations), the mean
    of the output edges, head ``ReLU -> 1x1 conv -> BN -> ReLU -> GAP -> dropout -> linear``."""

    def __init__(self, arch):
        super().__init__()
        if isinstance(arch, (str, os.PathLike)):
            with open(arch) as f:
                arch = json.load(f)
        if arch.get("schema") in _OLD_ARCH_SCHEMAS:
            raise ValueError(
                "arch.json: schema %r, written by an older nago whose generator assigned stages and "
                "joined disconnected graphs differently; this reads %r: regenerate it with "
                "nago-generate --force (same generator and seed)" % (arch.get("schema"), ARCH_SCHEMA))
        if arch.get("schema") != ARCH_SCHEMA:
            raise ValueError("arch.json: schema %r, expected %r" % (arch.get("schema"), ARCH_SCHEMA))
        self.arch = arch
        self.stem = nn.ModuleList([
            ConvBn(s["in_ch"], s["out_ch"], s["kernel"], s["kernel"], s["stride"], s["relu"]) for s in arch["stem"]
        ])
        self.cells = nn.ModuleList([Cell(c) for c in arch["cells"]])
        self.output = nn.ModuleList([Edge(e) for e in arch["output"]])
        h = arch["head"]
        self.head = ConvBn(h["in_ch"], h["channels"], 1, 1)
        self.dropout = nn.Dropout(h["dropout"])
        self.classifier = nn.Linear(h["channels"], h["classes"])

    def forward(self, x):
        for s in self.stem:
            x = s(x)
        stem_out = x
        cells = []
        for c in self.cells:
            cells.append(c(stem_out, cells))
        outs = [e(stem_out, cells) for e in self.output]
        body = _mean(outs, list(range(len(outs))))
        y = F.relu(self.head(body))
        y = F.adaptive_avg_pool2d(y, 1).flatten(1)
        return self.classifier(self.dropout(y))

    def n_params(self):
        """Trainable parameters (equals arch.json's ``counts.params``)."""
        return sum(p.numel() for p in self.parameters())


def load_model(directory=None, arch=None, weights=None, strict=True):
    """Builds the network of ``arch.json`` and loads ``weights.safetensors`` (by default both
    in ``directory``, as ``nago-report export`` writes them). Returns it in eval mode.

    The trainer's names map one to one onto this module's ``state_dict`` keys; PyTorch's
    ``num_batches_tracked`` BN counters (which libtorch's tch does not save) are left at 0.
    With ``strict``, any other missing or unexpected tensor is an error.
    """
    arch = arch or os.path.join(directory, "arch.json")
    weights = weights or os.path.join(directory, "weights.safetensors")
    net = NagoNet(arch)
    state = load_safetensors(weights)
    result = net.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    if strict and (missing or result.unexpected_keys):
        raise ValueError("%s does not fit %s: missing %s, unexpected %s" % (
            weights, arch if isinstance(arch, str) else "arch", missing[:10], result.unexpected_keys[:10]))
    n = net.n_params()
    counted = net.arch["counts"]["params"]
    if n != counted:
        raise ValueError("the module has %d parameters but arch.json counts %d" % (n, counted))
    # The input normalisation of training, when the export recorded it (export.json).
    manifest = os.path.join(directory, "export.json") if directory else None
    net.input_mean = net.input_std = None
    if manifest and os.path.isfile(manifest):
        m = json.load(open(manifest))
        net.input_mean, net.input_std = m.get("input_mean"), m.get("input_std")
    return net.eval()


def normalise(net, images):
    """uint8 images [N, C, H, W] -> the float input the network was trained on,
    ``(x / 255 - mean) / std`` per channel, with the statistics from export.json. Raises when
    the export has none (older trainers did not record them)."""
    if getattr(net, "input_mean", None) is None or getattr(net, "input_std", None) is None:
        raise ValueError("export.json has no input_mean/input_std; normalise the input as in training yourself")
    mean = torch.tensor(net.input_mean, dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(net.input_std, dtype=torch.float32).view(1, -1, 1, 1)
    return (images.float() / 255.0 - mean) / std
