//! The architecture description, `arch.json`.
//!
//! An [`Arch`] is one network sampled from a generator, written down completely: every
//! cell, op-graph and operation with its inputs, merge, channels and resolution, so that the
//! trainer (or the exported PyTorch module) builds it with no randomness of its own. The
//! exact parameter count, multiply-accumulates and an activation-memory estimate are
//! computed here ([`Arch::count`]) and must equal what the trainer's network holds.
//!
//! # The network, layer by layer
//!
//! * **Stem** ([`StemConv`]): each entry is `[ReLU →] Conv(k×k, stride, pad k/2, no bias) → BN`.
//! * **Edges** ([`Edge`]): an input of a node is the output of an earlier node of the same
//!   level (or the level's input), average-pooled by `pool` (kernel = stride = pool, no
//!   padding; only between stages) and then, where channels differ, projected by
//!   `ReLU → Conv1×1(no bias) → BN` ([`Projection`]).
//! * **Merges** ([`Merge`]): one input passes through unchanged. Several inputs are combined
//!   by `sum` (Σ sigmoid(wᵢ)·xᵢ, one scalar wᵢ per input, initialised to 0), `attention`
//!   (Σ αᵢ·xᵢ, α = softmax over i of ⟨GAP(xᵢ), vᵢ⟩/√C, one C-vector vᵢ per input, initialised to 0)
//!   or `concat` (channel concatenation in input order, then the merge's projection back to
//!   the node's width).
//! * **Operations** ([`OpNode`]): convolutions are `ReLU → Conv(kh×kw, stride 1, pad (kh/2, kw/2),
//!   no bias) → BN`; pooling is `AvgPool(k×k, stride 1, pad k/2, count_include_pad=false)`.
//! * **Levels**: an op-graph's output is the mean of its output operations; a cell's output
//!   the mean of its output op-graphs; the network's body output the mean of [`Arch::output`]
//!   (edges from the output cells, pooled and projected to the last cell's stage).
//! * **Head** ([`Head`]): `ReLU → Conv1×1(no bias) → BN → ReLU → global average pool →
//!   Dropout → Linear(with bias)`.
//!
//! Every BN is affine (weight and bias: 2·C parameters; running mean and variance are
//! buffers, not parameters).

mod count;
mod dot;

pub use count::Counts;
use nago_space::{json, Generator, MergeKind, Op, SpaceError};
use serde::{Deserialize, Serialize};

/// Schema tag of `arch.json`.
///
/// `nago.arch/2`: top-level nodes are assigned to stages by the method's threshold rule and
/// graphs are redrawn until connected, so the same generator and seed give another layout
/// than under `nago.arch/1` (boundary rounding, components joined after 100 draws).
pub const ARCH_SCHEMA: &str = "nago.arch/2";

/// Schemas of older `arch.json` files, refused with an explanation.
const OLD_ARCH_SCHEMAS: &[&str] = &["nago.arch/1"];

/// The shape of the data an architecture is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputShape {
    /// Image channels.
    pub channels: u32,
    /// Image height in pixels.
    pub height: u32,
    /// Image width in pixels.
    pub width: u32,
    /// Number of classes.
    pub classes: u32,
}

/// One of the three stages: its width and resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// Channels of every node in the stage.
    pub channels: u32,
    /// Feature-map height.
    pub height: u32,
    /// Feature-map width.
    pub width: u32,
}

/// One stem convolution: `[ReLU →] Conv(k×k, stride, padding k/2, no bias) → BN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StemConv {
    /// Input channels.
    pub in_ch: u32,
    /// Output channels.
    pub out_ch: u32,
    /// Square kernel size.
    pub kernel: u32,
    /// Stride.
    pub stride: u32,
    /// Whether a ReLU precedes the convolution.
    pub relu: bool,
}

/// A 1×1 channel projection: `ReLU → Conv1×1(no bias) → BN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Projection {
    /// Input channels.
    pub in_ch: u32,
    /// Output channels.
    pub out_ch: u32,
}

/// An input of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Edge {
    /// Index of the source node in the same level, always lower than the node's own index;
    /// `null` for the level's input (the stem output at the top level, the cell input in a
    /// cell, the op-graph input in an op-graph).
    pub from: Option<u32>,
    /// Average-pool factor applied to the source first (1: none).
    pub pool: u32,
    /// Projection applied after pooling, when the source's channels differ.
    pub project: Option<Projection>,
}

/// How a node combines its inputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Merge {
    /// The merge rule (irrelevant with a single input).
    pub kind: MergeKind,
    /// The inputs, in a fixed order (sources in increasing index, the level input first).
    pub inputs: Vec<Edge>,
    /// Channels of the merged result.
    pub channels: u32,
    /// For `concat` with several inputs: the projection from the summed input channels.
    pub project: Option<Projection>,
}

/// An operation node of an op-graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpNode {
    /// The operation.
    pub op: Op,
    /// Its inputs.
    pub merge: Merge,
    /// Output channels (equal to the merge's channels).
    pub channels: u32,
}

/// An op-graph: a graph of operations inside a cell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpGraph {
    /// How the op-graph's input is formed from earlier op-graphs of the cell.
    pub merge: Merge,
    /// The operations, in topological order.
    pub ops: Vec<OpNode>,
    /// Indices of the output operations (averaged).
    pub outputs: Vec<u32>,
}

/// A cell: a node of the top-level graph, itself a graph of op-graphs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cell {
    /// Stage (0, 1 or 2).
    pub stage: u32,
    /// Channels of the cell (its stage's).
    pub channels: u32,
    /// Feature-map height.
    pub height: u32,
    /// Feature-map width.
    pub width: u32,
    /// How the cell's input is formed from earlier cells (or the stem).
    pub merge: Merge,
    /// The op-graphs, in topological order.
    pub opgraphs: Vec<OpGraph>,
    /// Indices of the output op-graphs (averaged).
    pub outputs: Vec<u32>,
}

/// The classifier head: `ReLU → Conv1×1(in→channels) → BN → ReLU → GAP → Dropout → Linear`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Head {
    /// Input channels (the last cell's stage).
    pub in_ch: u32,
    /// Width of the 1×1 convolution (1280 by default).
    pub channels: u32,
    /// Dropout probability before the linear layer.
    pub dropout: f64,
    /// Output classes.
    pub classes: u32,
}

/// A complete architecture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arch {
    /// Must be [`ARCH_SCHEMA`].
    pub schema: String,
    /// A hand-made network's name (`plain-cnn`, `resnet20`: see
    /// `nago_generator::baselines`); absent for a sampled one, whose `generator` and `seed`
    /// say where it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The generator it was sampled from.
    pub generator: Generator,
    /// The seed it was sampled with.
    pub seed: u64,
    /// The data shape it is built for.
    pub input: InputShape,
    /// Channels per logical channel unit (from the generator's parameter limit).
    pub width_multiplier: u32,
    /// The three stages.
    pub stages: Vec<Stage>,
    /// The stem.
    pub stem: Vec<StemConv>,
    /// The cells, in topological order.
    pub cells: Vec<Cell>,
    /// Edges from the output cells to the body output (averaged).
    pub output: Vec<Edge>,
    /// The head.
    pub head: Head,
    /// Parameters, MACs and memory, as [`Arch::count`] computes them.
    pub counts: Counts,
}

/// What is wrong with an `arch.json`.
#[derive(Debug, thiserror::Error)]
pub enum ArchError {
    /// Not parseable, or the wrong schema.
    #[error(transparent)]
    Parse(#[from] SpaceError),
    /// Written by an older nago whose sampler gave other layouts.
    #[error(
        "arch.json has schema {found}, written by an older nago whose generator assigned \
         stages and joined disconnected graphs differently; this nago reads {ARCH_SCHEMA}: \
         regenerate it with nago-generate --force (same generator and seed)"
    )]
    Outdated { found: String },
    /// Parseable but not a consistent network.
    #[error("{path}: {message}")]
    Inconsistent { path: String, message: String },
}

fn bad(path: impl Into<String>, message: impl Into<String>) -> ArchError {
    ArchError::Inconsistent {
        path: path.into(),
        message: message.into(),
    }
}

impl Arch {
    /// Parses `arch.json` text and checks that it describes a consistent network whose
    /// recorded counts are right.
    pub fn from_json(text: &str) -> Result<Self, ArchError> {
        if let Ok(serde_json::Value::Object(o)) = serde_json::from_str(text) {
            if let Some(serde_json::Value::String(s)) = o.get("schema") {
                if OLD_ARCH_SCHEMAS.contains(&s.as_str()) {
                    return Err(ArchError::Outdated { found: s.clone() });
                }
            }
        }
        let arch: Arch = json::parse(text, Some(ARCH_SCHEMA))?;
        arch.check()?;
        Ok(arch)
    }

    /// Serialises to pretty JSON (stable field order, one trailing newline).
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("an Arch always serialises");
        s.push('\n');
        s
    }

    /// The Graphviz DOT picture: one cluster per cell, one per op-graph inside it.
    pub fn to_dot(&self) -> String {
        dot::render(self)
    }

    /// Counts parameters, MACs and activation memory from the layout.
    pub fn count(&self) -> Counts {
        count::count(self)
    }

    /// Number of operation nodes over all cells and op-graphs.
    pub fn n_ops(&self) -> usize {
        self.cells
            .iter()
            .flat_map(|c| &c.opgraphs)
            .map(|g| g.ops.len())
            .sum()
    }

    /// The narrowest operation's channels (the stem's output when there are no operations):
    /// a network whose narrowest layer has a few channels cannot learn, which is known
    /// before training.
    pub fn min_channels(&self) -> u32 {
        self.cells
            .iter()
            .flat_map(|c| &c.opgraphs)
            .flat_map(|g| &g.ops)
            .map(|o| o.channels)
            .min()
            .or_else(|| self.stem.last().map(|s| s.out_ch))
            .unwrap_or(0)
    }

    /// Number of op-graphs over all cells.
    pub fn n_opgraphs(&self) -> usize {
        self.cells.iter().map(|c| c.opgraphs.len()).sum()
    }

    /// Checks every structural rule the trainer relies on: edges point backwards, channels
    /// and resolutions agree, outputs exist, counts are right.
    pub fn check(&self) -> Result<(), ArchError> {
        let i = &self.input;
        if i.channels == 0 || i.height == 0 || i.width == 0 || i.classes == 0 {
            return Err(bad(
                "input",
                "channels, height, width and classes must be positive",
            ));
        }
        if self.stages.len() != 3 {
            return Err(bad(
                "stages",
                format!("expected 3 stages, found {}", self.stages.len()),
            ));
        }
        if self.stem.is_empty() {
            return Err(bad("stem", "is empty"));
        }
        let mut ch = i.channels;
        let (mut h, mut w) = (i.height, i.width);
        for (k, s) in self.stem.iter().enumerate() {
            if s.in_ch != ch || s.kernel == 0 || s.stride == 0 {
                return Err(bad(
                    format!("stem[{k}]"),
                    format!("expected in_ch {ch} and a positive kernel and stride"),
                ));
            }
            ch = s.out_ch;
            h = (h - 1) / s.stride + 1;
            w = (w - 1) / s.stride + 1;
        }
        let stem_shape = (ch, h, w);
        for (s, st) in self.stages.iter().enumerate() {
            let f = 1u32 << s;
            if st.channels == 0
                || st.height != h / f
                || st.width != w / f
                || st.height == 0
                || st.width == 0
            {
                return Err(bad(
                    format!("stages[{s}]"),
                    format!(
                        "expected resolution {}x{} (stem output / 2^{s}) and positive channels",
                        h / f,
                        w / f
                    ),
                ));
            }
        }
        if self.cells.is_empty() {
            return Err(bad("cells", "is empty"));
        }
        let cell_shape = |c: &Cell| (c.channels, c.height, c.width);
        for (ci, cell) in self.cells.iter().enumerate() {
            let path = format!("cells[{ci}]");
            let st = self
                .stages
                .get(cell.stage as usize)
                .ok_or_else(|| bad(&path, "stage out of range"))?;
            if (cell.channels, cell.height, cell.width) != (st.channels, st.height, st.width) {
                return Err(bad(&path, "shape differs from its stage's"));
            }
            if ci > 0 && cell.stage < self.cells[ci - 1].stage {
                return Err(bad(&path, "stages must not decrease along the cell order"));
            }
            let shapes: Vec<(u32, u32, u32)> = self.cells[..ci].iter().map(cell_shape).collect();
            check_merge(
                &format!("{path}.merge"),
                &cell.merge,
                ci,
                stem_shape,
                &shapes,
                cell_shape(cell),
            )?;
            if cell.opgraphs.is_empty() {
                return Err(bad(&path, "has no op-graphs"));
            }
            let inner = cell_shape(cell);
            for (gi, g) in cell.opgraphs.iter().enumerate() {
                let gpath = format!("{path}.opgraphs[{gi}]");
                check_merge(
                    &format!("{gpath}.merge"),
                    &g.merge,
                    gi,
                    inner,
                    &vec![inner; gi],
                    inner,
                )?;
                if g.ops.is_empty() {
                    return Err(bad(&gpath, "has no operations"));
                }
                for (oi, op) in g.ops.iter().enumerate() {
                    let opath = format!("{gpath}.ops[{oi}]");
                    check_merge(
                        &format!("{opath}.merge"),
                        &op.merge,
                        oi,
                        inner,
                        &vec![inner; oi],
                        inner,
                    )?;
                    if op.channels != inner.0 {
                        return Err(bad(
                            &opath,
                            format!(
                                "channels {} differ from the cell's {}",
                                op.channels, inner.0
                            ),
                        ));
                    }
                }
                check_outputs(&format!("{gpath}.outputs"), &g.outputs, g.ops.len())?;
                for &o in &g.outputs {
                    if g.ops[o as usize].op.is_pool() {
                        return Err(bad(
                            format!("{gpath}.ops[{o}]"),
                            "an output operation must not be pooling",
                        ));
                    }
                }
            }
            check_outputs(
                &format!("{path}.outputs"),
                &cell.outputs,
                cell.opgraphs.len(),
            )?;
        }
        let last = self.cells.last().expect("non-empty");
        let shapes: Vec<(u32, u32, u32)> = self.cells.iter().map(cell_shape).collect();
        if self.output.is_empty() {
            return Err(bad("output", "is empty"));
        }
        for (k, e) in self.output.iter().enumerate() {
            let src = e
                .from
                .ok_or_else(|| bad(format!("output[{k}]"), "must come from a cell"))?;
            check_edge(
                &format!("output[{k}]"),
                e,
                self.cells.len(),
                stem_shape,
                &shapes,
                cell_shape(last),
                true,
            )?;
            let _ = src;
        }
        if self.head.in_ch != last.channels
            || self.head.classes != i.classes
            || self.head.channels == 0
        {
            return Err(bad(
                "head",
                format!("expected in_ch {} and classes {}", last.channels, i.classes),
            ));
        }
        if !(0.0..1.0).contains(&self.head.dropout) {
            return Err(bad("head.dropout", "expected a probability in [0, 1)"));
        }
        let counted = self.count();
        if counted != self.counts {
            return Err(bad(
                "counts",
                format!(
                    "recorded {:?} but the layout gives {:?}",
                    self.counts, counted
                ),
            ));
        }
        Ok(())
    }
}

fn check_outputs(path: &str, outputs: &[u32], n: usize) -> Result<(), ArchError> {
    if outputs.is_empty() {
        return Err(bad(path, "no output nodes"));
    }
    for &o in outputs {
        if o as usize >= n {
            return Err(bad(
                path,
                format!("index {o} out of range (there are {n} nodes)"),
            ));
        }
    }
    Ok(())
}

fn check_edge(
    path: &str,
    e: &Edge,
    node: usize,
    level_input: (u32, u32, u32),
    shapes: &[(u32, u32, u32)],
    target: (u32, u32, u32),
    concat_input: bool,
) -> Result<u32, ArchError> {
    let src = match e.from {
        None => level_input,
        Some(j) if (j as usize) < node => shapes[j as usize],
        Some(j) => {
            return Err(bad(
                path,
                format!("source {j} is not an earlier node (this is node {node})"),
            ))
        }
    };
    if e.pool == 0 || src.1 / e.pool != target.1 || src.2 / e.pool != target.2 {
        return Err(bad(
            path,
            format!(
                "pool {} takes {}x{} to {}x{}, expected {}x{}",
                e.pool,
                src.1,
                src.2,
                src.1 / e.pool.max(1),
                src.2 / e.pool.max(1),
                target.1,
                target.2
            ),
        ));
    }
    match e.project {
        Some(p) if p.in_ch != src.0 || p.out_ch != target.0 => Err(bad(
            path,
            format!(
                "projection {}→{} does not map {} to {} channels",
                p.in_ch, p.out_ch, src.0, target.0
            ),
        )),
        Some(p) => Ok(p.out_ch),
        None if src.0 != target.0 && !concat_input => Err(bad(
            path,
            format!("needs a projection from {} to {} channels", src.0, target.0),
        )),
        None => Ok(src.0),
    }
}

fn check_merge(
    path: &str,
    m: &Merge,
    node: usize,
    level_input: (u32, u32, u32),
    shapes: &[(u32, u32, u32)],
    target: (u32, u32, u32),
) -> Result<(), ArchError> {
    if m.inputs.is_empty() {
        return Err(bad(path, "has no inputs"));
    }
    if m.channels != target.0 {
        return Err(bad(
            path,
            format!(
                "channels {} differ from the node's {}",
                m.channels, target.0
            ),
        ));
    }
    let concat = m.kind == MergeKind::Concat && m.inputs.len() > 1;
    let mut total = 0;
    for (k, e) in m.inputs.iter().enumerate() {
        total += check_edge(
            &format!("{path}.inputs[{k}]"),
            e,
            node,
            level_input,
            shapes,
            target,
            concat,
        )?;
    }
    match (concat, m.project) {
        (true, Some(p)) if p.in_ch == total && p.out_ch == target.0 => Ok(()),
        (true, _) => Err(bad(
            path,
            format!("concat needs a projection {total}→{}", target.0),
        )),
        (false, None) => Ok(()),
        (false, Some(_)) => Err(bad(
            path,
            "only a concat of several inputs has a merge projection",
        )),
    }
}
