//! Exact parameter and MAC counts, and the activation-memory estimate.

use crate::{Arch, Edge, Merge, Projection};
use nago_space::MergeKind;
use serde::{Deserialize, Serialize};

/// Size and cost of a network, for one image.
///
/// * `params`: trainable parameters (convolution weights, BN weights and biases, merge gates
///   and attention vectors, the linear layer's weight and bias). BN running statistics are
///   buffers and not counted.
/// * `macs`: multiply-accumulates of every convolution (k_h·k_w·C_in·C_out·H_out·W_out) and of
///   the linear layer (in·out); BN, pooling, merges and activations are not counted (the
///   usual convention of fvcore and thop).
/// * `activation_bytes`: float32 bytes of every tensor the forward pass produces (each
///   convolution, BN, pooling, merge and level mean), a training-memory estimate per image.
/// * `param_bytes`: float32 bytes of the parameters (`params`·4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Counts {
    /// Trainable parameters.
    pub params: u64,
    /// Multiply-accumulates per image.
    pub macs: u64,
    /// Forward activations per image, in bytes (float32).
    pub activation_bytes: u64,
    /// Parameter memory in bytes (float32).
    pub param_bytes: u64,
}

#[derive(Default)]
struct Tally {
    params: u64,
    macs: u64,
    act: u64,
}

impl Tally {
    /// A `[ReLU →] Conv(no bias) → BN` block at output resolution h×w.
    fn conv_bn(&mut self, kh: u64, kw: u64, cin: u64, cout: u64, h: u64, w: u64) {
        self.params += kh * kw * cin * cout + 2 * cout;
        self.macs += kh * kw * cin * cout * h * w;
        self.act += 2 * cout * h * w;
    }
    fn projection(&mut self, p: &Projection, h: u64, w: u64) {
        self.conv_bn(1, 1, p.in_ch as u64, p.out_ch as u64, h, w);
    }
    fn edge(&mut self, e: &Edge, src_ch: u64, h: u64, w: u64) {
        if e.pool > 1 {
            self.act += src_ch * h * w;
        }
        if let Some(p) = &e.project {
            self.projection(p, h, w);
        }
    }
    /// `src_ch(j)` gives the channels of source j (None: the level input).
    fn merge(&mut self, m: &Merge, src_ch: impl Fn(Option<u32>) -> u64, h: u64, w: u64) {
        for e in &m.inputs {
            self.edge(e, src_ch(e.from), h, w);
        }
        let k = m.inputs.len() as u64;
        if k > 1 {
            let c = m.channels as u64;
            match m.kind {
                MergeKind::Sum => self.params += k,
                MergeKind::Attention => self.params += k * c,
                MergeKind::Concat => {
                    let p = m.project.expect("checked: a concat merge has a projection");
                    self.act += p.in_ch as u64 * h * w;
                    self.projection(&p, h, w);
                }
            }
            self.act += c * h * w;
        }
    }
}

pub(crate) fn count(a: &Arch) -> Counts {
    let mut t = Tally::default();
    let (mut h, mut w) = (a.input.height as u64, a.input.width as u64);
    for s in &a.stem {
        let st = s.stride as u64;
        h = (h - 1) / st + 1;
        w = (w - 1) / st + 1;
        t.conv_bn(
            s.kernel as u64,
            s.kernel as u64,
            s.in_ch as u64,
            s.out_ch as u64,
            h,
            w,
        );
    }
    let stem_ch = a.stem.last().map(|s| s.out_ch as u64).unwrap_or(0);
    let cell_ch: Vec<u64> = a.cells.iter().map(|c| c.channels as u64).collect();
    for cell in &a.cells {
        let (ch, h, w) = (cell.channels as u64, cell.height as u64, cell.width as u64);
        t.merge(
            &cell.merge,
            |j| j.map_or(stem_ch, |j| cell_ch[j as usize]),
            h,
            w,
        );
        for g in &cell.opgraphs {
            t.merge(&g.merge, |_| ch, h, w);
            for op in &g.ops {
                t.merge(&op.merge, |_| ch, h, w);
                let (kh, kw) = op.op.kernel();
                if op.op.is_pool() {
                    t.act += ch * h * w;
                } else {
                    t.conv_bn(kh as u64, kw as u64, ch, op.channels as u64, h, w);
                }
            }
            if g.outputs.len() > 1 {
                t.act += ch * h * w;
            }
        }
        if cell.outputs.len() > 1 {
            t.act += ch * h * w;
        }
    }
    if let Some(last) = a.cells.last() {
        let (h, w) = (last.height as u64, last.width as u64);
        for e in &a.output {
            t.edge(e, e.from.map_or(stem_ch, |j| cell_ch[j as usize]), h, w);
        }
        if a.output.len() > 1 {
            t.act += last.channels as u64 * h * w;
        }
        let hd = &a.head;
        t.conv_bn(1, 1, hd.in_ch as u64, hd.channels as u64, h, w);
        t.params += hd.channels as u64 * hd.classes as u64 + hd.classes as u64;
        t.macs += hd.channels as u64 * hd.classes as u64;
        t.act += hd.channels as u64 + hd.classes as u64;
    }
    Counts {
        params: t.params,
        macs: t.macs,
        activation_bytes: 4 * t.act,
        param_bytes: 4 * t.params,
    }
}
