//! The three-level hierarchical sampler: generator + seed → architecture.

use crate::graphs::{connected, Dag, Disconnected};
use crate::rng::Rng;
use nago_arch::{
    Arch, Cell, Counts, Edge, Head, InputShape, Merge, OpGraph, OpNode, Projection, Stage,
    StemConv, ARCH_SCHEMA,
};
use nago_space::{Generator, LevelSpec, MergeKind, Op, SpaceError};

/// Knobs of the sampled network that are not generator hyperparameters (the head's width
/// and dropout are: `Generator::head_channels`, `Generator::head_dropout`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleOptions {
    /// Images whose smaller side exceeds this get the strided (ImageNet-style) stem.
    pub large_image: u32,
}

impl Default for SampleOptions {
    fn default() -> Self {
        SampleOptions { large_image: 64 }
    }
}

/// Why a generator could not be sampled for an input shape.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// The generator itself is invalid.
    #[error("generator.{0}")]
    Generator(#[from] SpaceError),
    /// The input shape cannot carry three stages.
    #[error("input {h}x{w}: {message}")]
    Input { h: u32, w: u32, message: String },
    /// A level's model gives no connected graph (never, or not within
    /// [`crate::graphs::MAX_DRAWS`] draws).
    #[error("generator.{level}: {source}")]
    Disconnected {
        /// `top`, `mid` or `bottom`.
        level: &'static str,
        /// The model and how many draws were made.
        source: Disconnected,
    },
}

/// ChaCha stream ids: one per graph of the hierarchy.
fn stream_top() -> u64 {
    0
}
fn stream_cell(cell: usize) -> u64 {
    (1 + cell as u64) << 32
}
fn stream_opgraph(cell: usize, g: usize) -> u64 {
    ((1 + cell as u64) << 32) | (1 + g as u64)
}

fn level_graph(level: &'static str, spec: &LevelSpec, rng: &mut Rng) -> Result<Dag, GenerateError> {
    let g = connected(spec.model, spec.n as usize, spec.k as usize, spec.p, rng)
        .map_err(|source| GenerateError::Disconnected { level, source })?;
    Ok(Dag::from_graph(&g))
}

/// The stage (0, 1 or 2) of each of the `n` top-level nodes, by the method's rule: with the
/// ratios normalised to shares θ₀, θ₁, θ₂, node x moves to the next stage once x reaches the
/// running threshold, i.e. x is in stage s when T_s ≤ x < T_{s+1} with T₀ = 0,
/// T₁ = θ₀·n, T₂ = (θ₀ + θ₁)·n, T₃ = ∞. With 1/3 each: 4 → [0,0,1,2], 5 → [0,0,1,1,2],
/// 8 → [0,0,0,1,1,1,2,2], 10 → [0,0,0,0,1,1,1,2,2,2].
///
/// A node exactly on a threshold (n = 3, 6, 9 with 1/3 each) is in the later stage; the
/// comparison allows 1e-9·n of rounding, so 6·(1/3 + 1/3) = 3.9999999999999996 still puts
/// node 4 in stage 2. With equal shares and n ≥ 3 every stage holds a node; a stage whose
/// interval [T_s, T_{s+1}) holds no integer (a share near 0, or shares like 0.5/0.1/0.4 at
/// n = 3) is empty, and the next stage then pools straight from the earlier one's
/// resolution.
pub fn stages(n: usize, ratios: [f64; 3]) -> Vec<u32> {
    let total: f64 = ratios.iter().sum();
    let nf = n as f64;
    let t = [nf * ratios[0] / total, nf * (ratios[0] + ratios[1]) / total];
    let eps = 1e-9 * nf.max(1.0);
    (0..n)
        .map(|x| t.iter().filter(|&&t| x as f64 + eps >= t).count() as u32)
        .collect()
}

/// The structure drawn before widths are known.
struct Skeleton {
    top: Dag,
    top_merges: Vec<MergeKind>,
    stages: Vec<u32>,
    cells: Vec<CellSkeleton>,
}

struct CellSkeleton {
    mid: Dag,
    mid_merges: Vec<MergeKind>,
    opgraphs: Vec<OpGraphSkeleton>,
}

struct OpGraphSkeleton {
    bottom: Dag,
    ops: Vec<Op>,
    merges: Vec<MergeKind>,
}

fn draw_merges(spec: &LevelSpec, n: usize, rng: &mut Rng) -> Vec<MergeKind> {
    let w = spec.merge.to_array();
    (0..n)
        .map(|_| MergeKind::ALL[rng.categorical(&w)])
        .collect()
}

fn draw_skeleton(g: &Generator, seed: u64) -> Result<Skeleton, GenerateError> {
    let mut rng = Rng::new(seed, stream_top());
    let top = level_graph("top", &g.top, &mut rng)?;
    let top_merges = draw_merges(&g.top, top.len(), &mut rng);
    let n = top.len();
    let stages = stages(n, g.stage_ratios);

    let op_w = g.ops.to_array();
    let out_w: Vec<f64> = Op::ALL
        .iter()
        .zip(op_w)
        .map(|(o, w)| if o.is_pool() { 0.0 } else { w })
        .collect();
    let out_ok = out_w.iter().sum::<f64>() > 0.0;

    let mut cells = Vec::with_capacity(n);
    for c in 0..n {
        let mut rng = Rng::new(seed, stream_cell(c));
        let mid = level_graph("mid", &g.mid, &mut rng)?;
        let mid_merges = draw_merges(&g.mid, mid.len(), &mut rng);
        let mut opgraphs = Vec::with_capacity(mid.len());
        for j in 0..mid.len() {
            let mut rng = Rng::new(seed, stream_opgraph(c, j));
            let bottom = level_graph("bottom", &g.bottom, &mut rng)?;
            let merges = draw_merges(&g.bottom, bottom.len(), &mut rng);
            let ops = (0..bottom.len())
                .map(|v| {
                    if bottom.outputs.binary_search(&(v as u32)).is_ok() {
                        if out_ok {
                            Op::ALL[rng.categorical(&out_w)]
                        } else {
                            Op::Conv3x3
                        }
                    } else {
                        Op::ALL[rng.categorical(&op_w)]
                    }
                })
                .collect();
            opgraphs.push(OpGraphSkeleton {
                bottom,
                ops,
                merges,
            });
        }
        cells.push(CellSkeleton {
            mid,
            mid_merges,
            opgraphs,
        });
    }
    Ok(Skeleton {
        top,
        top_merges,
        stages,
        cells,
    })
}

/// Builds a merge of same-shape inputs inside a cell (no pooling, no projections but the
/// concat's).
fn inner_merge(kind: MergeKind, preds: &[u32], channels: u32) -> Merge {
    let inputs: Vec<Edge> = if preds.is_empty() {
        vec![Edge {
            from: None,
            pool: 1,
            project: None,
        }]
    } else {
        preds
            .iter()
            .map(|&p| Edge {
                from: Some(p),
                pool: 1,
                project: None,
            })
            .collect()
    };
    let project = (kind == MergeKind::Concat && inputs.len() > 1).then(|| Projection {
        in_ch: channels * inputs.len() as u32,
        out_ch: channels,
    });
    Merge {
        kind,
        inputs,
        channels,
        project,
    }
}

/// Samples the architecture that `g` generates with `seed` for data of shape `input`.
///
/// Every cell and every op-graph draws its own graph (its own ChaCha stream), so cells differ.
pub fn sample(g: &Generator, seed: u64, input: InputShape) -> Result<Arch, GenerateError> {
    sample_with(g, seed, input, SampleOptions::default())
}

/// [`sample`] with explicit [`SampleOptions`].
pub fn sample_with(
    g: &Generator,
    seed: u64,
    input: InputShape,
    opts: SampleOptions,
) -> Result<Arch, GenerateError> {
    g.validate()?;
    let (large, h0, w0) = stem_geometry(input, opts.large_image)?;

    let sk = draw_skeleton(g, seed)?;
    let r = g.channel_ratios;

    // Width multiplier from the parameter budget of the bottom-level convolutions.
    let mut base = 0.0;
    for (c, cell) in sk.cells.iter().enumerate() {
        let rs = r[sk.stages[c] as usize];
        for og in &cell.opgraphs {
            for op in &og.ops {
                if !op.is_pool() {
                    let (kh, kw) = op.kernel();
                    base += (kh * kw) as f64 * rs * rs;
                }
            }
        }
    }
    let m = ((g.param_limit / base).sqrt().floor() as u32).max(1);
    let stage_ch: Vec<u32> = r
        .iter()
        .map(|x| ((m as f64 * x).round() as u32).max(1))
        .collect();
    let stages = stage_shapes(&stage_ch, h0, w0);

    let c0 = stage_ch[0];
    let stem = stem_for_size(input, c0, large);

    let edge_to =
        |from: Option<u32>, src_stage: u32, src_ch: u32, stage: u32, ch: u32, concat: bool| Edge {
            from,
            pool: 1 << (stage - src_stage),
            project: (src_ch != ch && !concat).then_some(Projection {
                in_ch: src_ch,
                out_ch: ch,
            }),
        };

    let mut cells = Vec::with_capacity(sk.cells.len());
    for (c, cs) in sk.cells.iter().enumerate() {
        let stage = sk.stages[c];
        let ch = stage_ch[stage as usize];
        let preds = &sk.top.preds[c];
        let kind = sk.top_merges[c];
        let concat = kind == MergeKind::Concat && preds.len() > 1;
        let inputs: Vec<Edge> = if preds.is_empty() {
            vec![edge_to(None, 0, c0, stage, ch, false)]
        } else {
            preds
                .iter()
                .map(|&p| {
                    let ps = sk.stages[p as usize];
                    edge_to(Some(p), ps, stage_ch[ps as usize], stage, ch, concat)
                })
                .collect()
        };
        let project = concat.then(|| Projection {
            in_ch: preds
                .iter()
                .map(|&p| stage_ch[sk.stages[p as usize] as usize])
                .sum(),
            out_ch: ch,
        });
        let merge = Merge {
            kind,
            inputs,
            channels: ch,
            project,
        };
        let opgraphs = cs
            .opgraphs
            .iter()
            .enumerate()
            .map(|(j, og)| OpGraph {
                merge: inner_merge(cs.mid_merges[j], &cs.mid.preds[j], ch),
                ops: og
                    .ops
                    .iter()
                    .enumerate()
                    .map(|(v, &op)| OpNode {
                        op,
                        merge: inner_merge(og.merges[v], &og.bottom.preds[v], ch),
                        channels: ch,
                    })
                    .collect(),
                outputs: og.bottom.outputs.clone(),
            })
            .collect();
        cells.push(Cell {
            stage,
            channels: ch,
            height: h0 >> stage,
            width: w0 >> stage,
            merge,
            opgraphs,
            outputs: cs.mid.outputs.clone(),
        });
    }

    let last_stage = *sk.stages.last().expect("at least one cell");
    let last_ch = stage_ch[last_stage as usize];
    let output = sk
        .top
        .outputs
        .iter()
        .map(|&o| {
            let s = sk.stages[o as usize];
            edge_to(Some(o), s, stage_ch[s as usize], last_stage, last_ch, false)
        })
        .collect();

    let mut arch = Arch {
        schema: ARCH_SCHEMA.to_string(),
        generator: *g,
        seed,
        name: None,
        input,
        width_multiplier: m,
        stages,
        stem,
        cells,
        output,
        head: Head {
            in_ch: last_ch,
            channels: g.head_channels,
            dropout: g.head_dropout,
            classes: input.classes,
        },
        counts: Counts::default(),
    };
    arch.counts = arch.count();
    Ok(arch)
}

/// The stem for `input` whose first stage has `c0` channels: two 3×3 convolutions, strided
/// (stride 2 each, ImageNet-style) when the image's smaller side exceeds the sampler's
/// [`SampleOptions::large_image`] (`large`).
pub(crate) fn stem_for_size(input: InputShape, c0: u32, large: bool) -> Vec<StemConv> {
    if large {
        vec![
            StemConv {
                in_ch: input.channels,
                out_ch: (c0 / 2).max(1),
                kernel: 3,
                stride: 2,
                relu: false,
            },
            StemConv {
                in_ch: (c0 / 2).max(1),
                out_ch: c0,
                kernel: 3,
                stride: 2,
                relu: true,
            },
        ]
    } else {
        vec![
            StemConv {
                in_ch: input.channels,
                out_ch: c0,
                kernel: 3,
                stride: 1,
                relu: false,
            },
            StemConv {
                in_ch: c0,
                out_ch: c0,
                kernel: 3,
                stride: 1,
                relu: true,
            },
        ]
    }
}

/// Whether `input` gets the strided stem (its smaller side exceeds `large_image`) and the
/// stem output's height and width; an error when the input cannot carry three stages (a stem
/// output under 4×4) or has no channels or classes.
pub(crate) fn stem_geometry(
    input: InputShape,
    large_image: u32,
) -> Result<(bool, u32, u32), GenerateError> {
    let (h, w) = (input.height, input.width);
    let large = h.min(w) > large_image;
    let stride = if large { 2 } else { 1 };
    let h0 = (h.saturating_sub(1)) / stride / stride + 1;
    let w0 = (w.saturating_sub(1)) / stride / stride + 1;
    if input.channels == 0 || input.classes == 0 || h == 0 || w == 0 || h0 / 4 == 0 || w0 / 4 == 0 {
        return Err(GenerateError::Input {
            h,
            w,
            message: "three stages need a stem output of at least 4x4 pixels, and channels and classes must be positive".into(),
        });
    }
    Ok((large, h0, w0))
}

/// The three stages of widths `channels`, the first at the stem output's `h0` × `w0`, each
/// next one at half the resolution.
pub(crate) fn stage_shapes(channels: &[u32], h0: u32, w0: u32) -> Vec<Stage> {
    (0..3)
        .map(|s| Stage {
            channels: channels[s],
            height: h0 >> s,
            width: w0 >> s,
        })
        .collect()
}
