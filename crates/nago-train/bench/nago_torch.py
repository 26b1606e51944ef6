"""The NAGO network of an arch.json in PyTorch eager: the same layers as nago-train builds
(see nago_arch's module doc), used as the baseline of `make bench-train`."""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

KERNELS = {
    "conv3x3": (3, 3), "conv5x5": (5, 5), "conv1x1": (1, 1), "conv3x1": (3, 1),
    "conv1x3": (1, 3), "avgpool3x3": (3, 3), "avgpool5x5": (5, 5),
}


class ConvBn(nn.Module):
    def __init__(self, cin, cout, kh, kw, stride=1, relu=True):
        super().__init__()
        self.relu = relu
        self.conv = nn.Conv2d(cin, cout, (kh, kw), stride=stride, padding=(kh // 2, kw // 2), bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        if self.relu:
            x = F.relu(x)
        return self.bn(self.conv(x))


def projection(p):
    return ConvBn(p["in_ch"], p["out_ch"], 1, 1)


class Edge(nn.Module):
    def __init__(self, e):
        super().__init__()
        self.src = e["from"]
        self.pool = e["pool"]
        self.proj = projection(e["project"]) if e["project"] else None

    def forward(self, inp, nodes):
        x = inp if self.src is None else nodes[self.src]
        if self.pool > 1:
            x = F.avg_pool2d(x, self.pool, self.pool)
        if self.proj is not None:
            x = self.proj(x)
        return x


class Merge(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.inputs = nn.ModuleList(Edge(e) for e in m["inputs"])
        k = len(m["inputs"])
        self.kind = m["kind"] if k > 1 else "single"
        if self.kind == "sum":
            self.gate = nn.Parameter(torch.zeros(k))
        elif self.kind == "attention":
            self.att = nn.Parameter(torch.zeros(k, m["channels"]))
            self.scale = math.sqrt(m["channels"])
        elif self.kind == "concat":
            self.proj = projection(m["project"])

    def forward(self, inp, nodes):
        xs = [e(inp, nodes) for e in self.inputs]
        if self.kind == "single":
            return xs[0]
        if self.kind == "sum":
            g = torch.sigmoid(self.gate)
            out = xs[0] * g[0]
            for i in range(1, len(xs)):
                out = out + xs[i] * g[i]
            return out
        if self.kind == "attention":
            logits = torch.stack([x.mean((2, 3)) @ self.att[i] for i, x in enumerate(xs)], 1)
            a = torch.softmax(logits / self.scale, 1)
            out = xs[0] * a[:, 0].view(-1, 1, 1, 1)
            for i in range(1, len(xs)):
                out = out + xs[i] * a[:, i].view(-1, 1, 1, 1)
            return out
        return self.proj(torch.cat(xs, 1))


def mean_of(nodes, outputs):
    out = nodes[outputs[0]]
    for o in outputs[1:]:
        out = out + nodes[o]
    return out / len(outputs) if len(outputs) > 1 else out


class OpNode(nn.Module):
    def __init__(self, o, ch):
        super().__init__()
        self.merge = Merge(o["merge"])
        kh, kw = KERNELS[o["op"]]
        self.pool = kh if o["op"].startswith("avgpool") else None
        if self.pool is None:
            self.conv = ConvBn(ch, o["channels"], kh, kw)

    def forward(self, inp, nodes):
        m = self.merge(inp, nodes)
        if self.pool is not None:
            return F.avg_pool2d(m, self.pool, 1, self.pool // 2, count_include_pad=False)
        return self.conv(m)


class OpGraph(nn.Module):
    def __init__(self, g, ch):
        super().__init__()
        self.merge = Merge(g["merge"])
        self.ops = nn.ModuleList(OpNode(o, ch) for o in g["ops"])
        self.outputs = g["outputs"]

    def forward(self, inp, nodes):
        x = self.merge(inp, nodes)
        ops = []
        for o in self.ops:
            ops.append(o(x, ops))
        return mean_of(ops, self.outputs)


class Cell(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.merge = Merge(c["merge"])
        self.graphs = nn.ModuleList(OpGraph(g, c["channels"]) for g in c["opgraphs"])
        self.outputs = c["outputs"]

    def forward(self, inp, nodes):
        x = self.merge(inp, nodes)
        gs = []
        for g in self.graphs:
            gs.append(g(x, gs))
        return mean_of(gs, self.outputs)


class NagoNet(nn.Module):
    def __init__(self, arch):
        super().__init__()
        self.stem = nn.ModuleList(
            ConvBn(s["in_ch"], s["out_ch"], s["kernel"], s["kernel"], s["stride"], s["relu"]) for s in arch["stem"]
        )
        self.cells = nn.ModuleList(Cell(c) for c in arch["cells"])
        self.output = nn.ModuleList(Edge(e) for e in arch["output"])
        h = arch["head"]
        self.head = ConvBn(h["in_ch"], h["channels"], 1, 1)
        self.dropout = nn.Dropout(h["dropout"])
        self.classifier = nn.Linear(h["channels"], h["classes"])

    def forward(self, x):
        for s in self.stem:
            x = s(x)
        stem = x
        cells = []
        for c in self.cells:
            cells.append(c(stem, cells))
        outs = [e(stem, cells) for e in self.output]
        body = mean_of(outs, list(range(len(outs))))
        y = F.relu(self.head(body))
        y = F.adaptive_avg_pool2d(y, 1).flatten(1)
        return self.classifier(self.dropout(y))
