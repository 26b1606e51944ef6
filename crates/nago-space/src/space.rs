//! Which hyperparameters are searched, over which ranges, and the unit-cube encoding.

use crate::generator::{Generator, GraphModel, LevelSpec, MergeKind, MergeWeights, Op, OpWeights};
use crate::json::finite;
use crate::SpaceError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Every hyperparameter of a [`Generator`], by the name the study file uses.
pub const PARAM_NAMES: [&str; 21] = [
    "top.model",
    "top.n",
    "top.k",
    "top.p",
    "top.merge",
    "mid.model",
    "mid.n",
    "mid.k",
    "mid.p",
    "mid.merge",
    "bottom.model",
    "bottom.n",
    "bottom.k",
    "bottom.p",
    "bottom.merge",
    "stage_ratios",
    "channel_ratios",
    "ops",
    "param_limit",
    "head_channels",
    "head_dropout",
];

/// Which components of a simplex-valued hyperparameter are searched: `"all"` or a list of
/// labels (op names for `ops`, merge names for `*.merge`, `"0"`, `"1"`, `"2"` for the ratios).
/// Components not listed get weight 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SimplexSpec {
    /// `"all"`: every component.
    All(String),
    /// The listed components.
    Labels(Vec<String>),
}

/// The range of one hyperparameter, as written in the study file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Domain {
    /// Not searched: always this value.
    Fixed(serde_json::Value),
    /// An integer in [lo, hi].
    Int([i64; 2]),
    /// A real in [lo, hi], searched on a linear scale.
    Real([f64; 2]),
    /// A positive real in [lo, hi], searched on a log scale.
    Log([f64; 2]),
    /// One of the listed graph models.
    Choice(Vec<String>),
    /// A distribution over the listed components.
    Simplex(SimplexSpec),
}

/// One hyperparameter and its domain.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// Its name, one of [`PARAM_NAMES`].
    pub name: &'static str,
    /// Its range (resolved: choices and simplex labels are checked, fixed values applied).
    pub domain: Domain,
}

/// How the optimiser must treat one coordinate of the unit cube.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum DimKind {
    /// A real in [0, 1].
    Real,
    /// An integer with `levels` values; level i is the cell [i/levels, (i+1)/levels).
    Int { levels: u32 },
    /// One coordinate of a one-hot group of `size` coordinates starting at `start`
    /// (decoded by argmax).
    OneHot { start: usize, size: usize },
    /// One coordinate of a simplex group of `size` coordinates starting at `start`
    /// (decoded by normalising the group).
    Simplex { start: usize, size: usize },
}

/// One coordinate of the unit cube.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dim {
    /// Readable name, e.g. `top.n`, `top.model=ws`, `ops.conv5x5`.
    pub name: String,
    /// How it is decoded.
    #[serde(flatten)]
    pub kind: DimKind,
}

/// A search space: a domain for every hyperparameter, and the unit-cube encoding of the
/// searched ones.
///
/// `decode(encode(g)) == g` for every generator inside the space, and `encode(decode(u))`
/// snaps any point of the cube to the canonical point of the generator it decodes to.
#[derive(Debug, Clone, PartialEq)]
pub struct Space {
    params: Vec<Param>,
    base: Generator,
    dims: Vec<Dim>,
}

fn labels_of(name: &str) -> Vec<&'static str> {
    if name.ends_with(".merge") {
        MergeKind::ALL.iter().map(|m| m.name()).collect()
    } else if name == "ops" {
        Op::ALL.iter().map(|o| o.name()).collect()
    } else {
        vec!["0", "1", "2"]
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Model,
    Int,
    Prob,
    Limit,
    Weights,
}

fn kind_of(name: &str) -> Kind {
    match name {
        "param_limit" => Kind::Limit,
        "head_channels" => Kind::Int,
        "head_dropout" => Kind::Prob,
        "stage_ratios" | "channel_ratios" | "ops" => Kind::Weights,
        _ => match name.rsplit('.').next() {
            Some("model") => Kind::Model,
            Some("n") | Some("k") => Kind::Int,
            Some("p") => Kind::Prob,
            _ => Kind::Weights,
        },
    }
}

fn level_mut<'a>(g: &'a mut Generator, name: &str) -> &'a mut LevelSpec {
    match name.split('.').next() {
        Some("top") => &mut g.top,
        Some("mid") => &mut g.mid,
        _ => &mut g.bottom,
    }
}

fn level<'a>(g: &'a Generator, name: &str) -> &'a LevelSpec {
    match name.split('.').next() {
        Some("top") => &g.top,
        Some("mid") => &g.mid,
        _ => &g.bottom,
    }
}

fn weights_get(g: &Generator, name: &str) -> Vec<f64> {
    match name {
        "stage_ratios" => g.stage_ratios.to_vec(),
        "channel_ratios" => g.channel_ratios.to_vec(),
        "ops" => g.ops.to_array().to_vec(),
        _ => level(g, name).merge.to_array().to_vec(),
    }
}

fn weights_set(g: &mut Generator, name: &str, w: &[f64]) {
    match name {
        "stage_ratios" => g.stage_ratios.copy_from_slice(w),
        "channel_ratios" => g.channel_ratios.copy_from_slice(w),
        "ops" => g.ops = OpWeights::from_array(w.try_into().expect("7 ops")),
        _ => level_mut(g, name).merge = MergeWeights::from_array(w.try_into().expect("3 merges")),
    }
}

fn int_get(g: &Generator, name: &str) -> i64 {
    if name == "head_channels" {
        return g.head_channels as i64;
    }
    let l = level(g, name);
    if name.ends_with(".n") {
        l.n as i64
    } else {
        l.k as i64
    }
}

fn int_set(g: &mut Generator, name: &str, v: i64) {
    if name == "head_channels" {
        g.head_channels = v as u32;
        return;
    }
    let l = level_mut(g, name);
    if name.ends_with(".n") {
        l.n = v as u32
    } else {
        l.k = v as u32
    }
}

fn real_get(g: &Generator, name: &str) -> f64 {
    match name {
        "param_limit" => g.param_limit,
        "head_dropout" => g.head_dropout,
        _ => level(g, name).p,
    }
}

fn real_set(g: &mut Generator, name: &str, v: f64) {
    match name {
        "param_limit" => g.param_limit = v,
        "head_dropout" => g.head_dropout = v,
        _ => level_mut(g, name).p = v,
    }
}

/// The default domain of each hyperparameter: the paper's 8-dimensional space.
fn default_domain(name: &str) -> Domain {
    match name {
        "top.n" | "bottom.n" => Domain::Int([3, 10]),
        "mid.n" => Domain::Int([1, 10]),
        "top.k" | "bottom.k" => Domain::Int([2, 5]),
        "top.p" | "mid.p" | "bottom.p" => Domain::Real([0.1, 0.9]),
        _ => Domain::Fixed(serde_json::Value::Null),
    }
}

/// The paper's fixed values for the hyperparameters it does not search.
fn default_base() -> Generator {
    let mut g = Generator::default();
    g.mid.model = GraphModel::Er;
    g.mid.k = 2;
    g.top.model = GraphModel::Ws;
    g.bottom.model = GraphModel::Ws;
    g
}

impl Default for Space {
    /// The paper's 8-dimensional space: N_t, K_t, P_t, N_m, P_m, N_b, K_b, P_b.
    fn default() -> Self {
        Space::from_overrides(&BTreeMap::new()).expect("the default space is valid")
    }
}

fn set_fixed(g: &mut Generator, name: &str, v: &serde_json::Value) -> Result<(), SpaceError> {
    let field = format!("space.{name}.fixed");
    let bad = |expected: &str| {
        SpaceError::invalid(field.clone(), format!("expected {expected}, found {v}"))
    };
    match kind_of(name) {
        Kind::Model => {
            let s = v.as_str().ok_or_else(|| bad("\"ws\", \"er\" or \"ba\""))?;
            level_mut(g, name).model =
                GraphModel::from_name(s).ok_or_else(|| bad("\"ws\", \"er\" or \"ba\""))?;
        }
        Kind::Int => {
            let i = v.as_u64().ok_or_else(|| bad("a non-negative integer"))?;
            int_set(g, name, i.min(u32::MAX as u64) as i64);
        }
        Kind::Prob | Kind::Limit => {
            let x = v.as_f64().ok_or_else(|| bad("a number"))?;
            real_set(g, name, x);
        }
        Kind::Weights => {
            let labels = labels_of(name);
            let mut w = vec![0.0; labels.len()];
            match v {
                serde_json::Value::Array(a)
                    if a.len() == labels.len() && name.ends_with("ratios") =>
                {
                    for (wi, x) in w.iter_mut().zip(a) {
                        *wi = x.as_f64().ok_or_else(|| bad("numbers"))?;
                    }
                }
                serde_json::Value::Object(m) if !name.ends_with("ratios") => {
                    for (k, x) in m {
                        let i = labels.iter().position(|l| l == k).ok_or_else(|| {
                            SpaceError::UnknownKey {
                                field: field.clone(),
                                key: k.clone(),
                                expected: labels.join(", "),
                            }
                        })?;
                        w[i] = x.as_f64().ok_or_else(|| bad("numbers"))?;
                    }
                }
                _ if name.ends_with("ratios") => return Err(bad("an array of 3 numbers")),
                _ => {
                    return Err(bad(&format!(
                        "an object with keys among {}",
                        labels.join(", ")
                    )))
                }
            }
            weights_set(g, name, &w);
        }
    }
    Ok(())
}

impl Space {
    /// Builds a space from the study file's `space` object: each key a hyperparameter name,
    /// each value its domain. Hyperparameters not named keep the paper's default domain.
    pub fn from_overrides(overrides: &BTreeMap<String, Domain>) -> Result<Self, SpaceError> {
        for key in overrides.keys() {
            if !PARAM_NAMES.contains(&key.as_str()) {
                return Err(SpaceError::UnknownKey {
                    field: "space".into(),
                    key: key.clone(),
                    expected: PARAM_NAMES.join(", "),
                });
            }
        }
        let mut base = default_base();
        let mut params = Vec::new();
        for name in PARAM_NAMES {
            let domain = overrides
                .get(name)
                .cloned()
                .unwrap_or_else(|| default_domain(name));
            let field = format!("space.{name}");
            let kind = kind_of(name);
            let mismatch = |what: &str| {
                SpaceError::invalid(
                    field.clone(),
                    format!("a `{what}` domain does not fit this hyperparameter"),
                )
            };
            let domain = match domain {
                Domain::Fixed(serde_json::Value::Null) => Domain::Fixed(serde_json::Value::Null),
                Domain::Fixed(v) => {
                    set_fixed(&mut base, name, &v)?;
                    Domain::Fixed(v)
                }
                Domain::Int([lo, hi]) => {
                    if kind != Kind::Int {
                        return Err(mismatch("int"));
                    }
                    let (min, max) = match name {
                        "head_channels" => (1, crate::generator::MAX_HEAD_CHANNELS as i64),
                        _ if name.ends_with(".n") => (1, crate::generator::MAX_NODES as i64),
                        _ => (0, crate::generator::MAX_NODES as i64),
                    };
                    if lo > hi || lo < min || hi > max {
                        return Err(SpaceError::range(
                            format!("{field}.int"),
                            format!("[{lo}, {hi}]"),
                            format!("lo ≤ hi within [{min}, {max}]"),
                        ));
                    }
                    if lo == hi {
                        int_set(&mut base, name, lo);
                    }
                    Domain::Int([lo, hi])
                }
                Domain::Real([lo, hi]) | Domain::Log([lo, hi]) => {
                    let is_log = matches!(overrides.get(name), Some(Domain::Log(_)));
                    let tag = if is_log { "log" } else { "real" };
                    finite(&format!("{field}.{tag}[0]"), lo)?;
                    finite(&format!("{field}.{tag}[1]"), hi)?;
                    let (min, max) = match kind {
                        Kind::Prob if name == "head_dropout" => {
                            (0.0, crate::generator::MAX_HEAD_DROPOUT)
                        }
                        Kind::Prob => (0.0, 1.0),
                        Kind::Limit => (1.0, 1e12),
                        _ => return Err(mismatch(tag)),
                    };
                    if is_log && kind != Kind::Limit {
                        return Err(mismatch("log"));
                    }
                    if lo > hi || lo < min || hi > max {
                        return Err(SpaceError::range(
                            format!("{field}.{tag}"),
                            format!("[{lo}, {hi}]"),
                            format!("lo ≤ hi within [{min}, {max}]"),
                        ));
                    }
                    if lo == hi {
                        real_set(&mut base, name, lo);
                    }
                    if is_log {
                        Domain::Log([lo, hi])
                    } else {
                        Domain::Real([lo, hi])
                    }
                }
                Domain::Choice(options) => {
                    if kind != Kind::Model {
                        return Err(mismatch("choice"));
                    }
                    if options.is_empty() {
                        return Err(SpaceError::invalid(
                            format!("{field}.choice"),
                            "needs at least one model",
                        ));
                    }
                    for o in &options {
                        if GraphModel::from_name(o).is_none() {
                            return Err(SpaceError::UnknownKey {
                                field: format!("{field}.choice"),
                                key: o.clone(),
                                expected: "ws, er, ba".into(),
                            });
                        }
                    }
                    let mut seen = options.clone();
                    seen.sort();
                    seen.dedup();
                    if seen.len() != options.len() {
                        return Err(SpaceError::invalid(
                            format!("{field}.choice"),
                            "lists a model twice",
                        ));
                    }
                    level_mut(&mut base, name).model =
                        GraphModel::from_name(&options[0]).expect("checked");
                    Domain::Choice(options)
                }
                Domain::Simplex(spec) => {
                    if kind != Kind::Weights {
                        return Err(mismatch("simplex"));
                    }
                    let all = labels_of(name);
                    let labels: Vec<String> = match spec {
                        SimplexSpec::All(s) if s == "all" => {
                            all.iter().map(|s| s.to_string()).collect()
                        }
                        SimplexSpec::All(s) => {
                            return Err(SpaceError::invalid(
                                format!("{field}.simplex"),
                                format!("expected \"all\" or a list of labels, found \"{s}\""),
                            ))
                        }
                        SimplexSpec::Labels(l) => l,
                    };
                    if labels.len() < 2 {
                        return Err(SpaceError::invalid(
                            format!("{field}.simplex"),
                            "needs at least two components (use `fixed` for one)",
                        ));
                    }
                    for l in &labels {
                        if !all.contains(&l.as_str()) {
                            return Err(SpaceError::UnknownKey {
                                field: format!("{field}.simplex"),
                                key: l.clone(),
                                expected: all.join(", "),
                            });
                        }
                    }
                    // A searched distribution's base value: uniform over the listed components.
                    let w: Vec<f64> = all
                        .iter()
                        .map(|a| {
                            if labels.iter().any(|l| l == a) {
                                1.0
                            } else {
                                0.0
                            }
                        })
                        .collect();
                    weights_set(&mut base, name, &w);
                    Domain::Simplex(SimplexSpec::Labels(labels))
                }
            };
            params.push(Param { name, domain });
        }
        base.validate().map_err(|e| match e {
            SpaceError::OutOfRange {
                field,
                value,
                expected,
            } => SpaceError::OutOfRange {
                field: format!("space.{field}"),
                value,
                expected,
            },
            SpaceError::Invalid { field, message } => SpaceError::Invalid {
                field: format!("space.{field}"),
                message,
            },
            other => other,
        })?;
        // Record the value of every hyperparameter left at its default, so the resolved space
        // says exactly what it fixes (and round-trips through the study file).
        for p in &mut params {
            if p.domain == Domain::Fixed(serde_json::Value::Null) {
                p.domain = Domain::Fixed(fixed_value(&base, p.name));
            }
        }
        let dims = Self::build_dims(&params);
        Ok(Space { params, base, dims })
    }

    fn build_dims(params: &[Param]) -> Vec<Dim> {
        let mut dims = Vec::new();
        for p in params {
            match &p.domain {
                Domain::Int([lo, hi]) if hi > lo => dims.push(Dim {
                    name: p.name.into(),
                    kind: DimKind::Int {
                        levels: (hi - lo + 1) as u32,
                    },
                }),
                Domain::Real([lo, hi]) | Domain::Log([lo, hi]) if hi > lo => dims.push(Dim {
                    name: p.name.into(),
                    kind: DimKind::Real,
                }),
                Domain::Choice(options) if options.len() > 1 => {
                    let start = dims.len();
                    for o in options {
                        dims.push(Dim {
                            name: format!("{}={o}", p.name),
                            kind: DimKind::OneHot {
                                start,
                                size: options.len(),
                            },
                        });
                    }
                }
                Domain::Simplex(SimplexSpec::Labels(labels)) => {
                    let start = dims.len();
                    for l in labels {
                        dims.push(Dim {
                            name: format!("{}.{l}", p.name),
                            kind: DimKind::Simplex {
                                start,
                                size: labels.len(),
                            },
                        });
                    }
                }
                _ => {}
            }
        }
        dims
    }

    /// The hyperparameters and their resolved domains, in [`PARAM_NAMES`] order.
    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// The coordinates of the unit cube, in order.
    pub fn dims(&self) -> &[Dim] {
        &self.dims
    }

    /// Number of coordinates of the unit cube.
    pub fn n_dims(&self) -> usize {
        self.dims.len()
    }

    /// The generator that every fixed hyperparameter takes its value from.
    pub fn base(&self) -> &Generator {
        &self.base
    }

    /// Maps a point of the unit cube to a generator. Coordinates are clamped to [0, 1];
    /// a NaN is an error.
    pub fn decode(&self, u: &[f64]) -> Result<Generator, SpaceError> {
        if u.len() != self.dims.len() {
            return Err(SpaceError::invalid(
                "point",
                format!(
                    "has {} coordinates, the space has {}",
                    u.len(),
                    self.dims.len()
                ),
            ));
        }
        for (d, &x) in self.dims.iter().zip(u) {
            finite(&format!("point.{}", d.name), x)?;
        }
        let u: Vec<f64> = u.iter().map(|x| x.clamp(0.0, 1.0)).collect();
        let mut g = self.base;
        let mut i = 0;
        for p in &self.params {
            match &p.domain {
                Domain::Int([lo, hi]) if hi > lo => {
                    let levels = (hi - lo + 1) as f64;
                    let v = lo + ((u[i] * levels).floor() as i64).min(hi - lo);
                    int_set(&mut g, p.name, v);
                    i += 1;
                }
                Domain::Real([lo, hi]) if hi > lo => {
                    real_set(&mut g, p.name, lo + u[i] * (hi - lo));
                    i += 1;
                }
                Domain::Log([lo, hi]) if hi > lo => {
                    let (a, b) = (lo.ln(), hi.ln());
                    real_set(&mut g, p.name, (a + u[i] * (b - a)).exp().clamp(*lo, *hi));
                    i += 1;
                }
                Domain::Choice(options) if options.len() > 1 => {
                    let group = &u[i..i + options.len()];
                    let mut best = 0;
                    for (j, &x) in group.iter().enumerate() {
                        if x > group[best] {
                            best = j;
                        }
                    }
                    level_mut(&mut g, p.name).model =
                        GraphModel::from_name(&options[best]).expect("checked");
                    i += options.len();
                }
                Domain::Simplex(SimplexSpec::Labels(labels)) => {
                    let group = &u[i..i + labels.len()];
                    let total: f64 = group.iter().sum();
                    let all = labels_of(p.name);
                    let mut w = vec![0.0; all.len()];
                    for (l, &x) in labels.iter().zip(group) {
                        let j = all.iter().position(|a| a == l).expect("checked");
                        w[j] = if total > 0.0 {
                            x / total
                        } else {
                            1.0 / labels.len() as f64
                        };
                    }
                    weights_set(&mut g, p.name, &w);
                    i += labels.len();
                }
                _ => {}
            }
        }
        Ok(g)
    }

    /// Maps a generator to its canonical point of the unit cube. The generator must lie in
    /// the space: fixed hyperparameters equal, searched ones in range.
    pub fn encode(&self, g: &Generator) -> Result<Vec<f64>, SpaceError> {
        g.validate()?;
        let mut u = Vec::with_capacity(self.dims.len());
        for p in &self.params {
            let name = p.name;
            let outside = |v: String, expected: String| SpaceError::range(name, v, expected);
            match &p.domain {
                Domain::Int([lo, hi]) => {
                    let v = int_get(g, name);
                    if v < *lo || v > *hi {
                        return Err(outside(v.to_string(), format!("[{lo}, {hi}]")));
                    }
                    if hi > lo {
                        u.push((v - lo) as f64 / (hi - lo + 1) as f64 + 0.5 / (hi - lo + 1) as f64);
                    }
                }
                Domain::Real([lo, hi]) => {
                    let v = real_get(g, name);
                    if v < *lo || v > *hi {
                        return Err(outside(v.to_string(), format!("[{lo}, {hi}]")));
                    }
                    if hi > lo {
                        u.push((v - lo) / (hi - lo));
                    }
                }
                Domain::Log([lo, hi]) => {
                    let v = real_get(g, name);
                    if v < *lo || v > *hi {
                        return Err(outside(v.to_string(), format!("[{lo}, {hi}]")));
                    }
                    if hi > lo {
                        u.push(((v.ln() - lo.ln()) / (hi.ln() - lo.ln())).clamp(0.0, 1.0));
                    }
                }
                Domain::Choice(options) => {
                    let m = level(g, name).model.name();
                    let j = options.iter().position(|o| o == m).ok_or_else(|| {
                        outside(m.to_string(), format!("one of {}", options.join(", ")))
                    })?;
                    if options.len() > 1 {
                        u.extend((0..options.len()).map(|k| if k == j { 1.0 } else { 0.0 }));
                    }
                }
                Domain::Simplex(SimplexSpec::Labels(labels)) => {
                    let all = labels_of(name);
                    let w = weights_get(g, name);
                    for (a, &x) in all.iter().zip(&w) {
                        if x > 0.0 && !labels.iter().any(|l| l == a) {
                            return Err(outside(
                                format!("weight {x} for `{a}`"),
                                format!("weights only for {}", labels.join(", ")),
                            ));
                        }
                    }
                    let picked: Vec<f64> = labels
                        .iter()
                        .map(|l| w[all.iter().position(|a| a == l).expect("checked")])
                        .collect();
                    let max = picked.iter().cloned().fold(0.0, f64::max);
                    u.extend(picked.iter().map(|x| x / max));
                }
                Domain::Simplex(SimplexSpec::All(_)) => unreachable!("resolved to labels"),
                Domain::Fixed(_) => {
                    if !fixed_equal(&self.base, g, name) {
                        return Err(SpaceError::invalid(
                            name,
                            "differs from the value the space fixes",
                        ));
                    }
                }
            }
        }
        Ok(u)
    }

    /// Whether `g` lies in the space.
    pub fn contains(&self, g: &Generator) -> bool {
        self.encode(g).is_ok()
    }

    /// The study-file form of this space: every hyperparameter with its domain.
    pub fn to_overrides(&self) -> BTreeMap<String, Domain> {
        self.params
            .iter()
            .map(|p| (p.name.to_string(), p.domain.clone()))
            .collect()
    }
}

fn fixed_value(g: &Generator, name: &str) -> serde_json::Value {
    match kind_of(name) {
        Kind::Model => serde_json::json!(level(g, name).model.name()),
        Kind::Int => serde_json::json!(int_get(g, name)),
        Kind::Prob | Kind::Limit => serde_json::json!(real_get(g, name)),
        Kind::Weights => {
            let w = weights_get(g, name);
            if name.ends_with("ratios") {
                serde_json::json!(w)
            } else {
                let labels = labels_of(name);
                let m: serde_json::Map<String, serde_json::Value> = labels
                    .iter()
                    .zip(&w)
                    .filter(|(_, &x)| x > 0.0)
                    .map(|(l, x)| (l.to_string(), serde_json::json!(x)))
                    .collect();
                serde_json::Value::Object(m)
            }
        }
    }
}

fn fixed_equal(a: &Generator, b: &Generator, name: &str) -> bool {
    match kind_of(name) {
        Kind::Model => level(a, name).model == level(b, name).model,
        Kind::Int => int_get(a, name) == int_get(b, name),
        Kind::Prob | Kind::Limit => real_get(a, name) == real_get(b, name),
        Kind::Weights => {
            // Compare as distributions: [1, 1, 1] fixes the same thing as [1/3, 1/3, 1/3]
            // for merge and op weights and stage ratios; channel ratios are compared as given
            // up to scale too, since the width multiplier absorbs the scale.
            let (wa, wb) = (weights_get(a, name), weights_get(b, name));
            let (sa, sb): (f64, f64) = (wa.iter().sum(), wb.iter().sum());
            wa.iter()
                .zip(&wb)
                .all(|(x, y)| (x / sa - y / sb).abs() < 1e-9)
        }
    }
}

impl Serialize for Space {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_overrides().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Space {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let overrides = BTreeMap::<String, Domain>::deserialize(d)?;
        Space::from_overrides(&overrides).map_err(serde::de::Error::custom)
    }
}

/// A scalar value of one flattened hyperparameter column.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum FlatValue {
    /// An integer column.
    Int(i64),
    /// A float column.
    Real(f64),
    /// A string column.
    Str(&'static str),
}

impl Generator {
    /// Every hyperparameter as a flat, typed column (`top_n`, `top_p`, `top_model`,
    /// `top_merge_sum`, `stage_ratio_0`, `op_conv3x3`, `param_limit`, …), always the same
    /// columns in the same order whatever the space, so trial tables of different studies
    /// share a schema. Weights are normalised to sum to 1.
    pub fn flat(&self) -> Vec<(String, FlatValue)> {
        let mut out = Vec::with_capacity(40);
        for (lname, l) in [
            ("top", &self.top),
            ("mid", &self.mid),
            ("bottom", &self.bottom),
        ] {
            out.push((format!("{lname}_model"), FlatValue::Str(l.model.name())));
            out.push((format!("{lname}_n"), FlatValue::Int(l.n as i64)));
            out.push((format!("{lname}_k"), FlatValue::Int(l.k as i64)));
            out.push((format!("{lname}_p"), FlatValue::Real(l.p)));
            let w = l.merge.to_array();
            let s: f64 = w.iter().sum();
            for (m, x) in MergeKind::ALL.iter().zip(w) {
                out.push((
                    format!("{lname}_merge_{}", m.name()),
                    FlatValue::Real(x / s),
                ));
            }
        }
        let s: f64 = self.stage_ratios.iter().sum();
        for (i, x) in self.stage_ratios.iter().enumerate() {
            out.push((format!("stage_ratio_{i}"), FlatValue::Real(x / s)));
        }
        for (i, x) in self.channel_ratios.iter().enumerate() {
            out.push((format!("channel_ratio_{i}"), FlatValue::Real(*x)));
        }
        let w = self.ops.to_array();
        let s: f64 = w.iter().sum();
        for (o, x) in Op::ALL.iter().zip(w) {
            out.push((format!("op_{}", o.name()), FlatValue::Real(x / s)));
        }
        out.push(("param_limit".into(), FlatValue::Real(self.param_limit)));
        out.push((
            "head_channels".into(),
            FlatValue::Int(self.head_channels as i64),
        ));
        out.push(("head_dropout".into(), FlatValue::Real(self.head_dropout)));
        out
    }
}
