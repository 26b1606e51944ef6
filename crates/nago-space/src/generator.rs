//! The generator: one point of the hierarchical random-graph space.

use crate::json::finite;
use crate::SpaceError;
use serde::{Deserialize, Serialize};

/// Schema tag of a standalone generator document.
pub const GENERATOR_SCHEMA: &str = "nago.generator/1";

/// A random-graph model, as defined by networkx (which the paper used).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum GraphModel {
    /// Watts–Strogatz WS(N, K, P): a ring where each node is joined to its ⌊K/2⌋ nearest
    /// neighbours on each side, each edge rewired with probability P.
    Ws,
    /// Erdős–Rényi ER(N, P): each pair joined with probability P (K unused).
    Er,
    /// Barabási–Albert BA(N, M=K): preferential attachment of K edges per new node (P unused).
    Ba,
}

impl GraphModel {
    /// All models, in encoding order.
    pub const ALL: [GraphModel; 3] = [GraphModel::Ws, GraphModel::Er, GraphModel::Ba];
    /// The lowercase name used in JSON.
    pub fn name(self) -> &'static str {
        match self {
            GraphModel::Ws => "ws",
            GraphModel::Er => "er",
            GraphModel::Ba => "ba",
        }
    }
    /// Parses a lowercase name.
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == s)
    }
}

/// An operation at the bottom level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Conv3x3,
    Conv5x5,
    Conv1x1,
    Conv3x1,
    Conv1x3,
    Avgpool3x3,
    Avgpool5x5,
}

impl Op {
    /// All operations, in encoding order.
    pub const ALL: [Op; 7] = [
        Op::Conv3x3,
        Op::Conv5x5,
        Op::Conv1x1,
        Op::Conv3x1,
        Op::Conv1x3,
        Op::Avgpool3x3,
        Op::Avgpool5x5,
    ];
    /// The lowercase name used in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Op::Conv3x3 => "conv3x3",
            Op::Conv5x5 => "conv5x5",
            Op::Conv1x1 => "conv1x1",
            Op::Conv3x1 => "conv3x1",
            Op::Conv1x3 => "conv1x3",
            Op::Avgpool3x3 => "avgpool3x3",
            Op::Avgpool5x5 => "avgpool5x5",
        }
    }
    /// Parses a lowercase name.
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == s)
    }
    /// Kernel size (height, width).
    pub fn kernel(self) -> (u32, u32) {
        match self {
            Op::Conv3x3 | Op::Avgpool3x3 => (3, 3),
            Op::Conv5x5 | Op::Avgpool5x5 => (5, 5),
            Op::Conv1x1 => (1, 1),
            Op::Conv3x1 => (3, 1),
            Op::Conv1x3 => (1, 3),
        }
    }
    /// Whether this is a pooling operation (no weights, never an output operation).
    pub fn is_pool(self) -> bool {
        matches!(self, Op::Avgpool3x3 | Op::Avgpool5x5)
    }
}

/// How a node combines several inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum MergeKind {
    /// Σ sigmoid(wᵢ)·xᵢ with one learnable scalar wᵢ per input.
    Sum,
    /// Σ αᵢ·xᵢ with α = softmax over inputs of ⟨GAP(xᵢ), vᵢ⟩/√C, one learnable vector vᵢ per input.
    Attention,
    /// Channel concatenation followed by a ReLU→1×1 conv→BN projection back to the node's width.
    Concat,
}

impl MergeKind {
    /// All merges, in encoding order.
    pub const ALL: [MergeKind; 3] = [MergeKind::Sum, MergeKind::Attention, MergeKind::Concat];
    /// The lowercase name used in JSON.
    pub fn name(self) -> &'static str {
        match self {
            MergeKind::Sum => "sum",
            MergeKind::Attention => "attention",
            MergeKind::Concat => "concat",
        }
    }
}

/// A distribution over operations (unnormalised non-negative weights). In JSON, operations
/// left out of a given distribution are 0 (`{"avgpool3x3": 1}` is avgpool3x3 only); only a
/// wholly absent `ops` is the default (conv3x3 only).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpWeights {
    #[serde(default)]
    pub conv3x3: f64,
    #[serde(default)]
    pub conv5x5: f64,
    #[serde(default)]
    pub conv1x1: f64,
    #[serde(default)]
    pub conv3x1: f64,
    #[serde(default)]
    pub conv1x3: f64,
    #[serde(default)]
    pub avgpool3x3: f64,
    #[serde(default)]
    pub avgpool5x5: f64,
}

impl Default for OpWeights {
    /// The paper's default: conv3x3 only.
    fn default() -> Self {
        OpWeights::from_array([1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    }
}

impl OpWeights {
    /// Weights in [`Op::ALL`] order.
    pub fn to_array(&self) -> [f64; 7] {
        [
            self.conv3x3,
            self.conv5x5,
            self.conv1x1,
            self.conv3x1,
            self.conv1x3,
            self.avgpool3x3,
            self.avgpool5x5,
        ]
    }
    /// From weights in [`Op::ALL`] order.
    pub fn from_array(a: [f64; 7]) -> Self {
        OpWeights {
            conv3x3: a[0],
            conv5x5: a[1],
            conv1x1: a[2],
            conv3x1: a[3],
            conv1x3: a[4],
            avgpool3x3: a[5],
            avgpool5x5: a[6],
        }
    }
}

/// A distribution over merge kinds (unnormalised non-negative weights). In JSON, kinds left
/// out of a given distribution are 0 (`{"concat": 1}` is concat only); only a wholly absent
/// `merge` is the default (sum only).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MergeWeights {
    #[serde(default)]
    pub sum: f64,
    #[serde(default)]
    pub attention: f64,
    #[serde(default)]
    pub concat: f64,
}

impl Default for MergeWeights {
    /// The paper's default: sum only.
    fn default() -> Self {
        MergeWeights {
            sum: 1.0,
            attention: 0.0,
            concat: 0.0,
        }
    }
}

impl MergeWeights {
    /// Weights in [`MergeKind::ALL`] order.
    pub fn to_array(&self) -> [f64; 3] {
        [self.sum, self.attention, self.concat]
    }
    /// From weights in [`MergeKind::ALL`] order.
    pub fn from_array(a: [f64; 3]) -> Self {
        MergeWeights {
            sum: a[0],
            attention: a[1],
            concat: a[2],
        }
    }
}

/// The graph model of one level and its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LevelSpec {
    /// Which random-graph model draws this level's graphs.
    pub model: GraphModel,
    /// Number of nodes N (≥ 1).
    pub n: u32,
    /// WS: neighbours K (odd K acts as K−1); BA: edges per new node. Clipped to N−1 when
    /// sampling. Unused by ER.
    pub k: u32,
    /// WS: rewiring probability; ER: edge probability. Unused by BA. In [0, 1]. Graphs are
    /// redrawn until connected, so ER with P = 0 (and N ≥ 2) cannot be sampled (an error
    /// naming the level, as is WS with K < 2 after clipping).
    pub p: f64,
    /// Distribution of the merge used by this level's nodes.
    #[serde(default)]
    pub merge: MergeWeights,
}

/// A network generator: the hyperparameters that NAGO optimises.
///
/// Sampling it (in the generator crate) with a seed gives one concrete architecture.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Generator {
    /// Top level: the graph of cells.
    pub top: LevelSpec,
    /// Middle level: each cell's graph of op-graphs.
    pub mid: LevelSpec,
    /// Bottom level: each op-graph's graph of operations.
    pub bottom: LevelSpec,
    /// θ_S: share of the top-level nodes in each of the 3 stages (normalised when used).
    #[serde(default = "default_stage_ratios")]
    pub stage_ratios: [f64; 3],
    /// θ_C: relative width of each stage (logical channel units).
    #[serde(default = "default_channel_ratios")]
    pub channel_ratios: [f64; 3],
    /// θ_op: distribution of bottom-level operations.
    #[serde(default)]
    pub ops: OpWeights,
    /// Parameter budget that sets the width multiplier (bottom-level convolutions only).
    #[serde(default = "default_param_limit")]
    pub param_limit: f64,
    /// Width of the head's 1×1 convolution before global pooling. The paper's 1280 (from
    /// MobileNetV2, sized for millions of parameters) is most of a network under 100k
    /// parameters: 28–84% of the quick space's panel networks, so their cells are starved.
    /// Not counted in `param_limit`. Written only when it is not the paper's, so every
    /// generator and architecture file of the paper's head keeps its bytes (and digests).
    #[serde(
        default = "default_head_channels",
        skip_serializing_if = "is_default_head_channels"
    )]
    pub head_channels: u32,
    /// Dropout before the classifier. RandWire's ImageNet value 0.2 is the default; a
    /// network trained a few epochs is still underfitting, and there the dropout costs
    /// accuracy (the quick preset fixes it at 0, as the hand-made baselines have it). Written
    /// only when it is not the default, so files of the default head keep their bytes.
    #[serde(
        default = "default_head_dropout",
        skip_serializing_if = "is_default_head_dropout"
    )]
    pub head_dropout: f64,
}

fn default_stage_ratios() -> [f64; 3] {
    [1.0 / 3.0; 3]
}
fn default_channel_ratios() -> [f64; 3] {
    [1.0, 2.0, 4.0]
}
fn default_param_limit() -> f64 {
    4.0e6
}
fn default_head_channels() -> u32 {
    DEFAULT_HEAD_CHANNELS
}
fn is_default_head_channels(c: &u32) -> bool {
    *c == DEFAULT_HEAD_CHANNELS
}

fn default_head_dropout() -> f64 {
    DEFAULT_HEAD_DROPOUT
}
fn is_default_head_dropout(d: &f64) -> bool {
    *d == DEFAULT_HEAD_DROPOUT
}

/// The head's default dropout (`head_dropout`).
pub const DEFAULT_HEAD_DROPOUT: f64 = 0.2;
/// The largest `head_dropout` (dropping every feature would leave nothing to classify).
pub const MAX_HEAD_DROPOUT: f64 = 0.9;

/// The paper's head width (`head_channels`).
pub const DEFAULT_HEAD_CHANNELS: u32 = 1280;
/// The widest head `head_channels` may ask for.
pub const MAX_HEAD_CHANNELS: u32 = 16384;

impl Default for Generator {
    /// The paper's best CIFAR-10 generator shape: WS(8,5,.6) / ER(1,.7) / WS(5,4,.2).
    fn default() -> Self {
        Generator {
            top: LevelSpec {
                model: GraphModel::Ws,
                n: 8,
                k: 5,
                p: 0.6,
                merge: MergeWeights::default(),
            },
            mid: LevelSpec {
                model: GraphModel::Er,
                n: 1,
                k: 2,
                p: 0.7,
                merge: MergeWeights::default(),
            },
            bottom: LevelSpec {
                model: GraphModel::Ws,
                n: 5,
                k: 4,
                p: 0.2,
                merge: MergeWeights::default(),
            },
            stage_ratios: default_stage_ratios(),
            channel_ratios: default_channel_ratios(),
            ops: OpWeights::default(),
            param_limit: default_param_limit(),
            head_channels: default_head_channels(),
            head_dropout: default_head_dropout(),
        }
    }
}

/// The most nodes a level may have: beyond this, graphs stop being networks one can train.
pub const MAX_NODES: u32 = 64;

fn check_weights(field: &str, names: &[&str], w: &[f64]) -> Result<(), SpaceError> {
    for (name, &v) in names.iter().zip(w) {
        let f = format!("{field}.{name}");
        finite(&f, v)?;
        if v < 0.0 {
            return Err(SpaceError::range(f, v, "a weight ≥ 0"));
        }
    }
    if w.iter().sum::<f64>() <= 0.0 {
        return Err(SpaceError::invalid(
            field,
            "all weights are 0; at least one must be positive",
        ));
    }
    Ok(())
}

impl LevelSpec {
    fn validate(&self, level: &str) -> Result<(), SpaceError> {
        if self.n == 0 || self.n > MAX_NODES {
            return Err(SpaceError::range(
                format!("{level}.n"),
                self.n,
                format!("an integer in [1, {MAX_NODES}]"),
            ));
        }
        finite(&format!("{level}.p"), self.p)?;
        if !(0.0..=1.0).contains(&self.p) {
            return Err(SpaceError::range(
                format!("{level}.p"),
                self.p,
                "a probability in [0, 1]",
            ));
        }
        if self.model != GraphModel::Er && self.k == 0 && self.n > 1 {
            return Err(SpaceError::range(
                format!("{level}.k"),
                self.k,
                "an integer ≥ 1",
            ));
        }
        let names: Vec<&str> = MergeKind::ALL.iter().map(|m| m.name()).collect();
        check_weights(&format!("{level}.merge"), &names, &self.merge.to_array())
    }

    /// K as the sampler uses it: clipped to N−1 (and at least 1 where N > 1).
    pub fn effective_k(&self) -> u32 {
        if self.n <= 1 {
            0
        } else {
            self.k.clamp(1, self.n - 1)
        }
    }
}

impl Generator {
    /// Checks every field: ranges, finiteness, non-degenerate distributions.
    pub fn validate(&self) -> Result<(), SpaceError> {
        self.top.validate("top")?;
        self.mid.validate("mid")?;
        self.bottom.validate("bottom")?;
        for (field, r) in [
            ("stage_ratios", &self.stage_ratios),
            ("channel_ratios", &self.channel_ratios),
        ] {
            check_weights(field, &["0", "1", "2"], r)?;
        }
        if self.channel_ratios.iter().any(|&c| c <= 0.0) {
            return Err(SpaceError::invalid(
                "channel_ratios",
                "every stage needs a positive width",
            ));
        }
        let names: Vec<&str> = Op::ALL.iter().map(|o| o.name()).collect();
        check_weights("ops", &names, &self.ops.to_array())?;
        finite("param_limit", self.param_limit)?;
        if self.param_limit < 1.0 {
            return Err(SpaceError::range(
                "param_limit",
                self.param_limit,
                "a number ≥ 1",
            ));
        }
        if self.head_channels == 0 || self.head_channels > MAX_HEAD_CHANNELS {
            return Err(SpaceError::range(
                "head_channels",
                self.head_channels,
                format!("an integer in [1, {MAX_HEAD_CHANNELS}]"),
            ));
        }
        finite("head_dropout", self.head_dropout)?;
        if !(0.0..=MAX_HEAD_DROPOUT).contains(&self.head_dropout) {
            return Err(SpaceError::range(
                "head_dropout",
                self.head_dropout,
                format!("a probability in [0, {MAX_HEAD_DROPOUT}]"),
            ));
        }
        Ok(())
    }

    /// Stage ratios normalised to sum to 1.
    pub fn stage_shares(&self) -> [f64; 3] {
        let s: f64 = self.stage_ratios.iter().sum();
        self.stage_ratios.map(|r| r / s)
    }

    /// Parses a generator document (`{"schema": "nago.generator/1", "generator": {...}}`) or a
    /// bare generator object, and validates it.
    pub fn from_json(text: &str) -> Result<Self, SpaceError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Doc {
            #[allow(dead_code)]
            schema: String,
            generator: Generator,
        }
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| SpaceError::Json {
                path: format!("line {} column {}", e.line(), e.column()),
                message: e.to_string(),
            })?;
        let g = if value.get("schema").is_some() {
            crate::json::parse::<Doc>(text, Some(GENERATOR_SCHEMA))?.generator
        } else {
            crate::json::parse::<Generator>(text, None)?
        };
        g.validate()?;
        Ok(g)
    }
}
