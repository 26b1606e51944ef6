//! The NAGO network built from an [`Arch`], layer for layer as `nago_arch`'s module doc
//! specifies, so that its trainable parameter count equals `arch.counts.params` exactly.

use nago_arch::{Arch, Edge, Merge, OpNode, Projection, StemConv};
use nago_space::MergeKind;
use tch::nn::{self, ModuleT};
use tch::Tensor;

/// `[ReLU →] Conv(kh×kw, stride, pad (kh/2, kw/2), no bias) → BN`.
#[derive(Debug)]
struct ConvBn {
    relu: bool,
    conv: nn::Conv<[i64; 2]>,
    bn: nn::BatchNorm,
}

impl ConvBn {
    #[allow(clippy::too_many_arguments)]
    fn new(p: nn::Path, cin: u32, cout: u32, kh: u32, kw: u32, stride: u32, relu: bool) -> Self {
        let cfg = nn::ConvConfigND::<[i64; 2]> {
            stride: [stride as i64, stride as i64],
            padding: [(kh / 2) as i64, (kw / 2) as i64],
            bias: false,
            ..Default::default()
        };
        let conv = nn::conv(
            &p / "conv",
            cin as i64,
            cout as i64,
            [kh as i64, kw as i64],
            cfg,
        );
        let bn = nn::batch_norm2d(&p / "bn", cout as i64, Default::default());
        ConvBn { relu, conv, bn }
    }
    fn projection(p: nn::Path, pr: &Projection) -> Self {
        ConvBn::new(p, pr.in_ch, pr.out_ch, 1, 1, 1, true)
    }
    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let x = if self.relu {
            x.relu()
        } else {
            x.shallow_clone()
        };
        self.bn.forward_t(&x.apply(&self.conv), train)
    }
}

#[derive(Debug)]
struct EdgeM {
    from: Option<usize>,
    pool: i64,
    project: Option<ConvBn>,
}

impl EdgeM {
    fn new(p: nn::Path, e: &Edge) -> Self {
        EdgeM {
            from: e.from.map(|f| f as usize),
            pool: e.pool as i64,
            project: e
                .project
                .as_ref()
                .map(|pr| ConvBn::projection(&p / "proj", pr)),
        }
    }
    fn forward(&self, input: &Tensor, nodes: &[Tensor], train: bool) -> Tensor {
        let src = match self.from {
            None => input,
            Some(j) => &nodes[j],
        };
        let x = if self.pool > 1 {
            src.avg_pool2d(
                [self.pool, self.pool],
                [self.pool, self.pool],
                [0, 0],
                false,
                true,
                None,
            )
        } else {
            src.shallow_clone()
        };
        match &self.project {
            Some(pr) => pr.forward(&x, train),
            None => x,
        }
    }
}

#[derive(Debug)]
enum Combine {
    Single,
    /// One scalar gate per input: Σ sigmoid(wᵢ)·xᵢ.
    Sum(Tensor),
    /// One C-vector per input: softmax over i of ⟨GAP(xᵢ), vᵢ⟩/√C, per image.
    Attention(Tensor, f64),
    /// Channel concatenation, then a projection back to the node's width.
    Concat(Box<ConvBn>),
}

#[derive(Debug)]
struct MergeM {
    inputs: Vec<EdgeM>,
    combine: Combine,
}

impl MergeM {
    fn new(p: nn::Path, m: &Merge) -> Self {
        let inputs = m
            .inputs
            .iter()
            .enumerate()
            .map(|(k, e)| EdgeM::new(&p / format!("in{k}"), e))
            .collect::<Vec<_>>();
        let k = m.inputs.len() as i64;
        let combine = if k == 1 {
            Combine::Single
        } else {
            match m.kind {
                MergeKind::Sum => Combine::Sum(p.zeros("gate", &[k])),
                MergeKind::Attention => Combine::Attention(
                    p.zeros("attention", &[k, m.channels as i64]),
                    (m.channels as f64).sqrt(),
                ),
                MergeKind::Concat => Combine::Concat(Box::new(ConvBn::projection(
                    &p / "concat",
                    m.project
                        .as_ref()
                        .expect("checked: concat has a projection"),
                ))),
            }
        };
        MergeM { inputs, combine }
    }
    fn forward(&self, input: &Tensor, nodes: &[Tensor], train: bool) -> Tensor {
        let xs: Vec<Tensor> = self
            .inputs
            .iter()
            .map(|e| e.forward(input, nodes, train))
            .collect();
        match &self.combine {
            Combine::Single => xs.into_iter().next().expect("one input"),
            Combine::Sum(w) => {
                let g = w.sigmoid();
                let mut acc: Option<Tensor> = None;
                for (i, x) in xs.iter().enumerate() {
                    let t = x * g.get(i as i64);
                    acc = Some(match acc {
                        None => t,
                        Some(a) => a + t,
                    });
                }
                acc.expect("several inputs")
            }
            Combine::Attention(v, scale) => {
                // logits[n, i] = <GAP(x_i)[n], v_i> / sqrt(C)
                let logits: Vec<Tensor> = xs
                    .iter()
                    .enumerate()
                    .map(|(i, x)| {
                        x.mean_dim(&[2i64, 3][..], false, None)
                            .matmul(&v.get(i as i64))
                    })
                    .collect();
                let alpha = (Tensor::stack(&logits, 1) / *scale).softmax(1, None);
                let mut acc: Option<Tensor> = None;
                for (i, x) in xs.iter().enumerate() {
                    let a = alpha.select(1, i as i64).view([-1, 1, 1, 1]);
                    let t = x * a;
                    acc = Some(match acc {
                        None => t,
                        Some(s) => s + t,
                    });
                }
                acc.expect("several inputs")
            }
            Combine::Concat(pr) => pr.forward(&Tensor::cat(&xs, 1), train),
        }
    }
}

#[derive(Debug)]
enum OpM {
    Conv(Box<ConvBn>),
    Pool(i64),
}

#[derive(Debug)]
struct OpNodeM {
    merge: MergeM,
    op: OpM,
}

impl OpNodeM {
    fn new(p: nn::Path, o: &OpNode, ch: u32) -> Self {
        let merge = MergeM::new(&p / "merge", &o.merge);
        let (kh, kw) = o.op.kernel();
        let op = if o.op.is_pool() {
            OpM::Pool(kh as i64)
        } else {
            OpM::Conv(Box::new(ConvBn::new(
                &p / "op",
                ch,
                o.channels,
                kh,
                kw,
                1,
                true,
            )))
        };
        OpNodeM { merge, op }
    }
}

fn mean_of(nodes: &[Tensor], outputs: &[usize]) -> Tensor {
    if outputs.len() == 1 {
        return nodes[outputs[0]].shallow_clone();
    }
    let sum = outputs[1..]
        .iter()
        .fold(nodes[outputs[0]].shallow_clone(), |a, &o| a + &nodes[o]);
    sum / outputs.len() as f64
}

#[derive(Debug)]
struct OpGraphM {
    merge: MergeM,
    ops: Vec<OpNodeM>,
    outputs: Vec<usize>,
}

#[derive(Debug)]
struct CellM {
    merge: MergeM,
    graphs: Vec<OpGraphM>,
    outputs: Vec<usize>,
}

/// A NAGO network: stem, cells, output averaging, head.
#[derive(Debug)]
pub struct Net {
    stem: Vec<ConvBn>,
    cells: Vec<CellM>,
    output: Vec<EdgeM>,
    head_conv: ConvBn,
    dropout: f64,
    linear: nn::Linear,
}

impl Net {
    /// Builds the network's variables under `p`.
    pub fn new(p: &nn::Path, arch: &Arch) -> Self {
        let stem = arch
            .stem
            .iter()
            .enumerate()
            .map(|(k, s): (usize, &StemConv)| {
                ConvBn::new(
                    p / "stem" / k,
                    s.in_ch,
                    s.out_ch,
                    s.kernel,
                    s.kernel,
                    s.stride,
                    s.relu,
                )
            })
            .collect();
        let cells = arch
            .cells
            .iter()
            .enumerate()
            .map(|(ci, c)| {
                let cp = p / "cells" / ci;
                CellM {
                    merge: MergeM::new(&cp / "merge", &c.merge),
                    graphs: c
                        .opgraphs
                        .iter()
                        .enumerate()
                        .map(|(gi, g)| {
                            let gp = &cp / "graphs" / gi;
                            OpGraphM {
                                merge: MergeM::new(&gp / "merge", &g.merge),
                                ops: g
                                    .ops
                                    .iter()
                                    .enumerate()
                                    .map(|(oi, o)| OpNodeM::new(&gp / "ops" / oi, o, c.channels))
                                    .collect(),
                                outputs: g.outputs.iter().map(|&o| o as usize).collect(),
                            }
                        })
                        .collect(),
                    outputs: c.outputs.iter().map(|&o| o as usize).collect(),
                }
            })
            .collect();
        let output = arch
            .output
            .iter()
            .enumerate()
            .map(|(k, e)| EdgeM::new(p / "output" / k, e))
            .collect();
        let h = &arch.head;
        let head_conv = ConvBn::new(p / "head", h.in_ch, h.channels, 1, 1, 1, true);
        let linear = nn::linear(
            p / "classifier",
            h.channels as i64,
            h.classes as i64,
            Default::default(),
        );
        Net {
            stem,
            cells,
            output,
            head_conv,
            dropout: h.dropout,
            linear,
        }
    }
}

impl ModuleT for Net {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut x = xs.shallow_clone();
        for s in &self.stem {
            x = s.forward(&x, train);
        }
        let stem_out = x;
        let mut cells: Vec<Tensor> = Vec::with_capacity(self.cells.len());
        for c in &self.cells {
            let cin = c.merge.forward(&stem_out, &cells, train);
            let mut graphs: Vec<Tensor> = Vec::with_capacity(c.graphs.len());
            for g in &c.graphs {
                let gin = g.merge.forward(&cin, &graphs, train);
                let mut ops: Vec<Tensor> = Vec::with_capacity(g.ops.len());
                for o in &g.ops {
                    let m = o.merge.forward(&gin, &ops, train);
                    let y = match &o.op {
                        OpM::Conv(cb) => cb.forward(&m, train),
                        OpM::Pool(k) => {
                            m.avg_pool2d([*k, *k], [1, 1], [*k / 2, *k / 2], false, false, None)
                        }
                    };
                    ops.push(y);
                }
                graphs.push(mean_of(&ops, &g.outputs));
            }
            cells.push(mean_of(&graphs, &c.outputs));
        }
        let outs: Vec<Tensor> = self
            .output
            .iter()
            .map(|e| e.forward(&stem_out, &cells, train))
            .collect();
        let idx: Vec<usize> = (0..outs.len()).collect();
        let body = mean_of(&outs, &idx);
        let y = self.head_conv.forward(&body, train).relu();
        let y = y.adaptive_avg_pool2d([1, 1]).flatten(1, -1);
        y.dropout(self.dropout, train).apply(&self.linear)
    }
}

/// Trainable parameters held in `vs` (BN running statistics excluded).
pub fn count_params(vs: &nn::VarStore) -> u64 {
    vs.trainable_variables()
        .iter()
        .map(|t| t.numel() as u64)
        .sum()
}
