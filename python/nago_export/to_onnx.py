"""Export a nago network to ONNX, with the input normalisation of training inside.

    python -m nago_export.to_onnx EXPORT_DIR [--out FILE] [--opset 18]

EXPORT_DIR is what ``nago-report export`` writes (arch.json, weights.safetensors,
export.json); ``nago-report export --format onnx`` runs this for you. The ONNX model has one
input and one output:

* ``images``: float32 [N, C, H, W], pixel values 0..255 as stored in the image files (a uint8
  image cast to float), any batch size N; the per-channel normalisation of training,
  ``(x / 255 - mean) / std`` with the statistics in export.json, is the graph's first nodes;
* ``logits``: float32 [N, classes].

The graph comes from PyTorch's exporter (``torch.onnx.export(..., dynamo=True)``, the
maintained route, which needs the ``onnx`` and ``onnxscript`` packages) applied to
``nago_export.NagoNet`` in evaluation mode, the module that the project's tests check
against the trainer's own logits; its optimiser folds BatchNorm into the convolutions.
The file is checked with ``onnx.checker`` and, where ``onnxruntime`` is installed, run on
a random batch against PyTorch (an error above 1e-4). It is written to a temporary name and
renamed, so a killed export never leaves a partial ``model.onnx``.

Prints one JSON line describing what was written.
"""

import argparse
import contextlib
import json
import os
import sys

import torch
import torch.nn as nn

from . import load_model

TOLERANCE = 1e-4


class Normalised(nn.Module):
    """``net`` behind the normalisation of training: takes pixel values 0..255."""

    def __init__(self, net):
        super().__init__()
        if net.input_mean is None or net.input_std is None:
            raise ValueError("export.json has no input_mean/input_std (written by an older nago-train): "
                             "retrain the trial or export the weights only")
        c = net.arch["input"]["channels"]
        mean = torch.tensor(net.input_mean, dtype=torch.float32).view(1, -1, 1, 1)
        std = torch.tensor(net.input_std, dtype=torch.float32).view(1, -1, 1, 1)
        if mean.shape[1] != c or std.shape[1] != c:
            raise ValueError("export.json: input_mean/input_std have %d/%d values, the network takes %d channels"
                             % (mean.shape[1], std.shape[1], c))
        # (x / 255 - mean) / std = x * scale + shift, folded into two constants.
        self.register_buffer("scale", 1.0 / (255.0 * std))
        self.register_buffer("shift", -mean / std)
        self.net = net

    def forward(self, images):
        return self.net(images * self.scale + self.shift)


def export_onnx(directory, out=None, opset=18, verify=True):
    """Writes ``directory``/model.onnx (or ``out``); returns a dict describing it."""
    import onnx  # noqa: F401  (the exporter needs it; fail early with its name)

    out = out or os.path.join(directory, "model.onnx")
    net = load_model(directory)
    model = Normalised(net).eval()
    i = net.arch["input"]
    example = torch.rand(2, i["channels"], i["height"], i["width"]) * 255.0
    tmp = "%s.tmp.%d" % (out, os.getpid())
    try:
        program = torch.onnx.export(
            model, (example,), input_names=["images"], output_names=["logits"],
            dynamic_shapes=({0: torch.export.Dim("batch")},), opset_version=opset,
            dynamo=True, optimize=True, verbose=False)
        program.save(tmp)
        proto = onnx.load(tmp)
        onnx.checker.check_model(proto, full_check=True)
        got_opset = max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
        if got_opset < 17:
            raise ValueError("the exporter wrote opset %d, below 17" % got_opset)
        info = {
            "file": out,
            "opset": got_opset,
            "input": "images",
            "output": "logits",
            "input_shape": ["N", i["channels"], i["height"], i["width"]],
            "pixel_range": [0, 255],
            "nodes": len(proto.graph.node),
            "node_types": sorted({n.op_type for n in proto.graph.node}),
            "torch": torch.__version__,
            "onnx": onnx.__version__,
        }
        if verify:
            info["verified"] = _verify(tmp, model, i)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return info


def _verify(path, model, i):
    """onnxruntime against PyTorch on a random batch of 5; None without onnxruntime."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    g = torch.Generator().manual_seed(0)
    x = torch.rand(5, i["channels"], i["height"], i["width"], generator=g) * 255.0
    with torch.no_grad():
        ref = model(x).numpy()
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = sess.run(["logits"], {"images": x.numpy()})[0]
    diff = float(abs(got - ref).max())
    if not diff <= TOLERANCE:
        raise ValueError("onnxruntime's logits differ from PyTorch's by %.3g (> %g)" % (diff, TOLERANCE))
    return {"onnxruntime": ort.__version__, "max_abs_diff": diff, "batch": 5}


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m nago_export.to_onnx", description=__doc__.split("\n\n")[0])
    ap.add_argument("directory", help="a `nago-report export` directory")
    ap.add_argument("--out", help="the ONNX file (default: DIRECTORY/model.onnx)")
    ap.add_argument("--opset", type=int, default=18, help="ONNX opset, >= 17 (default 18)")
    ap.add_argument("--no-verify", action="store_true", help="skip the onnxruntime check")
    a = ap.parse_args(argv)
    if a.opset < 17:
        ap.error("--opset %d: expected 17 or more" % a.opset)
    torch.set_num_threads(1)
    try:
        # The exporter reports its progress on stdout; stdout is this tool's JSON line.
        with contextlib.redirect_stdout(sys.stderr):
            info = export_onnx(a.directory, a.out, a.opset, not a.no_verify)
    except (OSError, ValueError, ImportError) as e:
        print("nago_export.to_onnx: error: %s" % e, file=sys.stderr)
        return 1
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
