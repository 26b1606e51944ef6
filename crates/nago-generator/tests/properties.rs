//! Property tests over thousands of random generators: structure, channels, determinism.

use nago_arch::{Arch, InputShape, Merge};
use nago_generator::graphs::{self, Dag};
use nago_generator::rng::Rng;
use nago_generator::{sample, stages, GenerateError};
use nago_space::{Domain, Generator, GraphModel, MergeKind, SimplexSpec, Space};
use petgraph::graph::NodeIndex;
use proptest::prelude::*;
use std::collections::BTreeMap;

const FMNIST: InputShape = InputShape {
    channels: 1,
    height: 28,
    width: 28,
    classes: 10,
};

/// Every extended dimension searched: models, merges, ops, ratios, parameter budget.
fn extended_space() -> Space {
    let mut o = BTreeMap::new();
    for l in ["top", "mid", "bottom"] {
        o.insert(
            format!("{l}.model"),
            Domain::Choice(vec!["ws".into(), "er".into(), "ba".into()]),
        );
        o.insert(
            format!("{l}.merge"),
            Domain::Simplex(SimplexSpec::All("all".into())),
        );
        o.insert(format!("{l}.p"), Domain::Real([0.0, 1.0]));
        o.insert(format!("{l}.k"), Domain::Int([1, 12]));
    }
    o.insert("top.n".into(), Domain::Int([1, 10]));
    o.insert("mid.n".into(), Domain::Int([1, 8]));
    o.insert("bottom.n".into(), Domain::Int([1, 10]));
    o.insert("mid.k".into(), Domain::Int([1, 12]));
    o.insert(
        "ops".into(),
        Domain::Simplex(SimplexSpec::All("all".into())),
    );
    o.insert(
        "stage_ratios".into(),
        Domain::Simplex(SimplexSpec::All("all".into())),
    );
    o.insert(
        "channel_ratios".into(),
        Domain::Simplex(SimplexSpec::All("all".into())),
    );
    o.insert("param_limit".into(), Domain::Log([1e3, 1e6]));
    Space::from_overrides(&o).unwrap()
}

/// Samples `g`, or `None` where a level's model cannot give a connected graph: that is an
/// error (never a patched graph), and only for models that are (practically) never connected.
fn sample_connected(g: &Generator, seed: u64) -> Option<Arch> {
    match sample(g, seed, FMNIST) {
        Ok(a) => Some(a),
        Err(GenerateError::Disconnected { level, source }) => {
            let spec = match level {
                "top" => g.top,
                "mid" => g.mid,
                _ => g.bottom,
            };
            assert_eq!(spec.model, source.model);
            assert_eq!(spec.n as usize, source.n);
            let hopeless = match source.model {
                GraphModel::Ws => spec.effective_k() < 2,
                GraphModel::Er => spec.p == 0.0,
                GraphModel::Ba => false,
            };
            if hopeless {
                assert_eq!(source.draws, 0);
            } else {
                assert_eq!(source.draws, graphs::MAX_DRAWS);
                // Only ER fails this way, and only where all draws failing is plausible.
                assert_eq!(source.model, GraphModel::Er, "{source}");
                let c = er_connected_probability(source.n, source.p);
                assert!(
                    (1.0 - c).powi(source.draws as i32) > 1e-12,
                    "{source}: P(connected) = {c}"
                );
            }
            None
        }
        Err(e) => panic!("{e}"),
    }
}

/// P(ER(n, p) is connected), exactly: C(n) = 1 − Σ_{k<n} C(n−1, k−1)·C(k)·(1−p)^{k(n−k)}
/// (the component of node 0 has k nodes).
fn er_connected_probability(n: usize, p: f64) -> f64 {
    let q = 1.0 - p;
    let binom = |n: usize, k: usize| (0..k).fold(1.0, |a, i| a * (n - i) as f64 / (i + 1) as f64);
    let mut c = vec![0.0, 1.0];
    for m in 2..=n {
        let s: f64 = (1..m)
            .map(|k| binom(m - 1, k - 1) * c[k] * q.powi((k * (m - k)) as i32))
            .sum();
        c.push(1.0 - s);
    }
    c[n]
}

#[test]
fn the_default_space_practically_never_exhausts_the_cap() {
    // ER(n ≤ 10, p ≥ 0.1) is the hardest level of the default space (WS(3..10, 2..5,
    // 0.1..0.9) is connected ≥ 92% of the time); ER(8, 0.1) is the worst.
    let worst = (2..=10)
        .map(|n| er_connected_probability(n, 0.1))
        .fold(1.0, f64::min);
    assert!((worst - 0.005411).abs() < 1e-6, "{worst}");
    assert!((er_connected_probability(4, 0.1) - 0.012934).abs() < 1e-6);
    let all_fail = (graphs::MAX_DRAWS as f64) * (1.0 - worst).ln();
    assert!(all_fail < (1e-9f64).ln(), "ln P(all fail) = {all_fail}");
}

fn point(d: usize) -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(0.0f64..=1.0, d)
}

/// Every node of a level reaches an output and is reached from an input (a node whose only
/// input is the level's input).
fn check_flow(merges: &[&Merge], outputs: &[u32]) {
    let n = merges.len();
    let mut from_input = vec![false; n];
    for (v, m) in merges.iter().enumerate() {
        from_input[v] = m.inputs.iter().any(|e| match e.from {
            None => true,
            Some(j) => from_input[j as usize],
        });
        assert!(from_input[v], "node {v} not reachable from an input");
    }
    let mut to_output = vec![false; n];
    for &o in outputs {
        to_output[o as usize] = true;
    }
    for v in (0..n).rev() {
        if to_output[v] {
            for e in &merges[v].inputs {
                if let Some(j) = e.from {
                    to_output[j as usize] = true;
                }
            }
        }
    }
    // A node that is not an output feeds a later node, which reaches an output by induction.
    assert!(to_output.iter().all(|&t| t), "a node reaches no output");
}

fn check_arch(a: &Arch) {
    a.check().expect("a sampled architecture is consistent");
    let cells: Vec<&Merge> = a.cells.iter().map(|c| &c.merge).collect();
    let outs: Vec<u32> = a.output.iter().map(|e| e.from.unwrap()).collect();
    check_flow(&cells, &outs);
    for c in &a.cells {
        let gs: Vec<&Merge> = c.opgraphs.iter().map(|g| &g.merge).collect();
        check_flow(&gs, &c.outputs);
        for g in &c.opgraphs {
            let ops: Vec<&Merge> = g.ops.iter().map(|o| &o.merge).collect();
            check_flow(&ops, &g.outputs);
            for m in &ops {
                if m.kind == MergeKind::Concat && m.inputs.len() > 1 {
                    let p = m.project.unwrap();
                    assert_eq!(p.in_ch, c.channels * m.inputs.len() as u32);
                    assert_eq!(p.out_ch, c.channels);
                }
            }
        }
    }
    assert_eq!(a.count(), a.counts);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn sampled_architectures_are_consistent(u in point(extended_space().n_dims()), seed in any::<u64>()) {
        let space = extended_space();
        let g = space.decode(&u).unwrap();
        let Some(a) = sample_connected(&g, seed) else { return Ok(()) };
        check_arch(&a);
        prop_assert_eq!(a.cells.len(), g.top.n as usize);
        for c in &a.cells {
            prop_assert_eq!(c.opgraphs.len(), g.mid.n as usize);
            for og in &c.opgraphs {
                prop_assert_eq!(og.ops.len(), g.bottom.n as usize);
                for &o in &og.outputs {
                    prop_assert!(!og.ops[o as usize].op.is_pool());
                }
            }
        }
    }

    #[test]
    fn default_space_samples_are_consistent(u in point(Space::default().n_dims()), seed in any::<u64>()) {
        let g = Space::default().decode(&u).unwrap();
        check_arch(&sample(&g, seed, FMNIST).unwrap());
    }

    #[test]
    fn every_graph_is_connected(model in 0usize..3, n in 1usize..=20, k in 0usize..=25, p in 0.0f64..=1.0, seed in any::<u64>()) {
        let model = GraphModel::ALL[model];
        let mut rng = Rng::new(seed, 0);
        let g = match graphs::connected(model, n, k, p, &mut rng) {
            Ok(g) => g,
            Err(e) => {
                // Only models that can never (WS with K < 2, ER with P = 0) or practically
                // never (ER at a tiny P) be connected.
                let k = k.clamp(1, n.max(2) - 1);
                prop_assert!(
                    (model == GraphModel::Ws && k < 2) || (model == GraphModel::Er && p < 0.25),
                    "{}", e
                );
                return Ok(());
            }
        };
        prop_assert_eq!(g.node_count(), n.max(1));
        prop_assert!(graphs::is_connected(&g));
        let dag = Dag::from_graph(&g);
        prop_assert!(!petgraph::algo::is_cyclic_directed(&to_digraph(&dag)));
        // Every edge points from lower to higher index.
        for (v, preds) in dag.preds.iter().enumerate() {
            prop_assert!(preds.iter().all(|&p| (p as usize) < v));
        }
        prop_assert!(dag.outputs.contains(&(n.max(1) as u32 - 1)));
    }

    #[test]
    fn same_seed_same_architecture(u in point(extended_space().n_dims()), seed in any::<u64>()) {
        let g = extended_space().decode(&u).unwrap();
        let Some(a) = sample_connected(&g, seed) else { return Ok(()) };
        let b = sample(&g, seed, FMNIST).unwrap();
        prop_assert_eq!(a.to_json(), b.to_json());
        let parsed = Arch::from_json(&a.to_json()).unwrap();
        prop_assert_eq!(parsed, a);
    }
}

fn to_digraph(d: &Dag) -> petgraph::graph::DiGraph<(), ()> {
    let mut g = petgraph::graph::DiGraph::new();
    let nodes: Vec<_> = (0..d.len()).map(|_| g.add_node(())).collect();
    for (v, preds) in d.preds.iter().enumerate() {
        for &p in preds {
            g.add_edge(nodes[p as usize], nodes[v], ());
        }
    }
    g
}

#[test]
fn ws_keeps_the_edge_count_and_clips_k() {
    for seed in 0..200 {
        for (n, k) in [(10, 4), (10, 5), (7, 6), (5, 9), (3, 2)] {
            let mut rng = Rng::new(seed, 0);
            let kk = k.min(n - 1);
            let g = graphs::watts_strogatz(n, kk, 0.5, &mut rng);
            assert_eq!(
                g.edge_count(),
                n * (kk / 2),
                "WS({n},{kk}) must keep n·⌊k/2⌋ edges"
            );
        }
    }
    // K ≥ N is clipped to N − 1: WS(5, 9) behaves as WS(5, 4).
    let spec = nago_space::LevelSpec {
        model: GraphModel::Ws,
        n: 5,
        k: 9,
        p: 0.3,
        merge: Default::default(),
    };
    assert_eq!(spec.effective_k(), 4);
}

#[test]
fn extreme_probabilities() {
    for seed in 0..50 {
        // P = 0: WS is the plain ring lattice; ER has no edges, so it is an error (never a
        // patched graph).
        let mut r = Rng::new(seed, 0);
        let ring = graphs::connected(GraphModel::Ws, 8, 4, 0.0, &mut r).unwrap();
        let lattice: Vec<_> = ring
            .edge_indices()
            .map(|e| ring.edge_endpoints(e).unwrap())
            .map(|(a, b)| (a.index().min(b.index()), a.index().max(b.index())))
            .collect();
        for (a, b) in lattice {
            let d = (b - a).min(8 - (b - a));
            assert!(d <= 2, "P=0 must not rewire");
        }
        let er0 = graphs::connected(GraphModel::Er, 6, 0, 0.0, &mut r).unwrap_err();
        assert_eq!(er0.draws, 0);
        assert!(er0.to_string().contains("P > 0"), "{er0}");
        // P = 1: ER is complete.
        let er1 = graphs::connected(GraphModel::Er, 6, 0, 1.0, &mut r).unwrap();
        assert_eq!(er1.edge_count(), 15);
        // P = 1: WS rewires everything yet stays connected with the same edge count.
        let ws1 = graphs::connected(GraphModel::Ws, 9, 4, 1.0, &mut r).unwrap();
        assert!(graphs::is_connected(&ws1));
        assert_eq!(ws1.edge_count(), 18);
    }
}

fn paper_best() -> Generator {
    Generator::default()
}

#[test]
fn single_opgraph_cells() {
    let mut g = paper_best();
    g.mid.n = 1;
    let a = sample(&g, 7, FMNIST).unwrap();
    assert!(a
        .cells
        .iter()
        .all(|c| c.opgraphs.len() == 1 && c.outputs == vec![0]));
    check_arch(&a);
}

#[test]
fn cells_draw_their_own_graphs() {
    // With 8 cells of ER(6, 0.5) op-graph graphs, identical graphs in every cell would mean a
    // shared seed (the bug of an early reference release).
    let mut g = paper_best();
    g.mid = nago_space::LevelSpec {
        model: GraphModel::Er,
        n: 6,
        k: 2,
        p: 0.5,
        merge: Default::default(),
    };
    // (The paper's WS(5, 4, ·) is the complete graph K5 whatever the seed, so use WS(8, 4, .5).)
    g.bottom = nago_space::LevelSpec {
        model: GraphModel::Ws,
        n: 8,
        k: 4,
        p: 0.5,
        merge: Default::default(),
    };
    let mut all_same = 0;
    for seed in 0..100 {
        let a = sample(&g, seed, FMNIST).unwrap();
        let first: Vec<_> = a.cells[0]
            .opgraphs
            .iter()
            .map(|o| o.merge.inputs.clone())
            .collect();
        if a.cells.iter().all(|c| {
            c.opgraphs
                .iter()
                .map(|o| o.merge.inputs.clone())
                .collect::<Vec<_>>()
                == first
        }) {
            all_same += 1;
        }
        // Op-graphs inside one cell differ too.
        let bottoms: Vec<_> = a
            .cells
            .iter()
            .flat_map(|c| &c.opgraphs)
            .map(|o| {
                o.ops
                    .iter()
                    .map(|x| x.merge.inputs.clone())
                    .collect::<Vec<_>>()
            })
            .collect();
        assert!(
            bottoms.iter().any(|b| *b != bottoms[0]),
            "seed {seed}: every op-graph identical"
        );
    }
    assert_eq!(all_same, 0);
}

#[test]
fn different_seeds_differ() {
    let g = paper_best();
    let a = sample(&g, 1, FMNIST).unwrap();
    let b = sample(&g, 2, FMNIST).unwrap();
    assert_ne!(a.cells, b.cells);
}

#[test]
fn pinned_architecture() {
    // The same generator and seed give the same architecture on every platform and in every
    // version that keeps the schema: this pins one sample's JSON by its FNV-1a hash.
    let a = sample(&paper_best(), 2020, FMNIST).unwrap();
    let json = a.to_json();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in json.as_bytes() {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    assert_eq!(
        (a.counts.params, a.counts.macs, h),
        PINNED,
        "pinned sample changed:\n{json}"
    );
}

const PINNED: (u64, u64, u64) = (4_277_745, 552_173_220, 11_029_500_138_816_778_502);

#[test]
fn width_follows_the_parameter_limit() {
    let mut g = paper_best();
    let mut prev = 0;
    for limit in [1e4, 1e5, 1e6, 4e6] {
        g.param_limit = limit;
        let a = sample(&g, 3, FMNIST).unwrap();
        assert!(a.counts.params > prev);
        prev = a.counts.params;
        // m = ⌊√(limit / base)⌋ with base the bottom-level conv cost in logical units.
        let base: f64 = a
            .cells
            .iter()
            .map(|c| {
                let r = g.channel_ratios[c.stage as usize];
                c.opgraphs
                    .iter()
                    .flat_map(|o| &o.ops)
                    .filter(|o| !o.op.is_pool())
                    .map(|o| {
                        let (kh, kw) = o.op.kernel();
                        (kh * kw) as f64 * r * r
                    })
                    .sum::<f64>()
            })
            .sum();
        assert_eq!(
            a.width_multiplier,
            ((limit / base).sqrt().floor() as u32).max(1)
        );
    }
}

#[test]
fn large_images_get_a_strided_stem_and_small_ones_fail() {
    let g = paper_best();
    let a = sample(
        &g,
        1,
        InputShape {
            channels: 3,
            height: 224,
            width: 224,
            classes: 1000,
        },
    )
    .unwrap();
    assert_eq!(a.stages[0].height, 56);
    assert!(a.stem.iter().all(|s| s.stride == 2));
    check_arch(&a);
    let err = sample(
        &g,
        1,
        InputShape {
            channels: 1,
            height: 3,
            width: 3,
            classes: 10,
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("4x4"), "{err}");
}

#[test]
fn stages_follow_the_running_threshold() {
    // With 1/3 each, node x is in stage s once x ≥ s·N/3 (the method's rule; exact lists).
    let third = [1.0 / 3.0; 3];
    let expected: [(usize, &[u32]); 8] = [
        (3, &[0, 1, 2]),
        (4, &[0, 0, 1, 2]),
        (5, &[0, 0, 1, 1, 2]),
        (6, &[0, 0, 1, 1, 2, 2]),
        (7, &[0, 0, 0, 1, 1, 2, 2]),
        (8, &[0, 0, 0, 1, 1, 1, 2, 2]),
        (9, &[0, 0, 0, 1, 1, 1, 2, 2, 2]),
        (10, &[0, 0, 0, 0, 1, 1, 1, 2, 2, 2]),
    ];
    for (n, want) in expected {
        assert_eq!(stages(n, third), want, "N_t = {n}");
        // Unnormalised ratios, and ones whose sum is not exactly representable.
        assert_eq!(stages(n, [1.0, 1.0, 1.0]), want, "N_t = {n}, ratios 1:1:1");
        assert_eq!(
            stages(n, [0.1, 0.1, 0.1]),
            want,
            "N_t = {n}, ratios 0.1 each"
        );
        // The rule in exact integer arithmetic: x ≥ s·N/3 ⇔ 3x ≥ s·N.
        let exact: Vec<u32> = (0..n)
            .map(|x| (1..=2).filter(|s| 3 * x >= s * n).count() as u32)
            .collect();
        assert_eq!(exact, want);
    }
    // Non-uniform ratios: thresholds θ₀·N and (θ₀ + θ₁)·N.
    assert_eq!(stages(8, [1.0, 2.0, 1.0]), [0, 0, 1, 1, 1, 1, 2, 2]);
    assert_eq!(stages(4, [0.5, 0.25, 0.25]), [0, 0, 1, 2]);
    assert_eq!(stages(10, [0.2, 0.3, 0.5]), [0, 0, 1, 1, 1, 2, 2, 2, 2, 2]);
    assert_eq!(stages(10, [2.0, 3.0, 5.0]), [0, 0, 1, 1, 1, 2, 2, 2, 2, 2]);
    assert_eq!(stages(5, [0.6, 0.2, 0.2]), [0, 0, 0, 1, 2]);
    assert_eq!(stages(7, [0.1, 0.3, 0.6]), [0, 1, 1, 2, 2, 2, 2]);
    // A share of 0 leaves its stage empty; N = 1 is stage 0.
    assert_eq!(stages(4, [0.0, 0.0, 1.0]), [2, 2, 2, 2]);
    assert_eq!(stages(4, [1.0, 0.0, 1.0]), [0, 0, 2, 2]);
    assert_eq!(stages(1, third), [0]);
    // Stages never decrease and every stage is non-empty for equal shares and N ≥ 3.
    for n in 3..=64 {
        let s = stages(n, third);
        assert!(s.windows(2).all(|w| w[0] <= w[1]));
        assert!((0..3).all(|k| s.contains(&k)), "N_t = {n}: {s:?}");
    }
}

#[test]
fn the_papers_best_generator_has_base_2115() {
    // WS(8,5,.6) / ER(1,.7) / WS(5,4,.2), conv3x3 only: 8 cells of one op-graph of 5 convs,
    // stages [0,0,0,1,1,1,2,2] at ratios 1:2:4, so base = 45·(3·1 + 3·4 + 2·16) = 2115.
    let mut g = paper_best();
    for seed in 0..20 {
        for (limit, m) in [(4e6, 43), (3e5, 11)] {
            g.param_limit = limit;
            let a = sample(&g, seed, FMNIST).unwrap();
            let st: Vec<u32> = a.cells.iter().map(|c| c.stage).collect();
            assert_eq!(st, [0, 0, 0, 1, 1, 1, 2, 2]);
            assert_eq!(a.width_multiplier, m, "limit {limit}");
            assert_eq!(((limit / 2115.0_f64).sqrt().floor()) as u32, m);
            assert_eq!(
                a.stages.iter().map(|s| s.channels).collect::<Vec<_>>(),
                [m, 2 * m, 4 * m]
            );
        }
    }
}

/// χ² of sampled labelled-graph frequencies of ER(4, p) redrawn until connected against the
/// exact conditional distribution (p^|E|·(1−p)^(6−|E|) over the 38 connected graphs of the
/// 64 on 4 labelled nodes).
fn er4_chi2(p: f64, samples: usize, seed: u64) -> (f64, usize) {
    let pairs: [(usize, usize); 6] = [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)];
    let connected = |mask: usize| {
        let mut g = graphs::Graph::default();
        for _ in 0..4 {
            g.add_node(());
        }
        for (i, &(a, b)) in pairs.iter().enumerate() {
            if mask >> i & 1 == 1 {
                g.add_edge(NodeIndex::new(a), NodeIndex::new(b), ());
            }
        }
        graphs::is_connected(&g)
    };
    let mut prob = [0.0; 64];
    for (mask, pr) in prob.iter_mut().enumerate() {
        if connected(mask) {
            let e = mask.count_ones() as i32;
            *pr = p.powi(e) * (1.0 - p).powi(6 - e);
        }
    }
    let total: f64 = prob.iter().sum();
    let mut counts = [0usize; 64];
    let mut rng = Rng::new(seed, 0);
    for _ in 0..samples {
        let g = graphs::connected(GraphModel::Er, 4, 0, p, &mut rng).unwrap();
        let mut mask = 0;
        for e in g.edge_indices() {
            let (a, b) = g.edge_endpoints(e).unwrap();
            let (a, b) = (a.index().min(b.index()), a.index().max(b.index()));
            mask |= 1 << pairs.iter().position(|&q| q == (a, b)).unwrap();
        }
        counts[mask] += 1;
    }
    let mut chi2 = 0.0;
    let mut cells = 0;
    for mask in 0..64 {
        if prob[mask] == 0.0 {
            assert_eq!(counts[mask], 0, "a disconnected graph was returned");
            continue;
        }
        let e = samples as f64 * prob[mask] / total;
        chi2 += (counts[mask] as f64 - e).powi(2) / e;
        cells += 1;
    }
    (chi2, cells)
}

#[test]
fn er_matches_the_exact_connected_distribution() {
    // 38 connected labelled graphs: 37 degrees of freedom; χ²₃₇ exceeds 113.7 with
    // probability 1e-9 (scipy.stats.chi2.isf(1e-9, 37)). The old sampler (components joined
    // after 100 draws) puts ~28% of ER(4, 0.1) on a few chains and fails this by far.
    for (p, seed) in [(0.1, 1), (0.7, 2), (0.3, 3)] {
        let (chi2, cells) = er4_chi2(p, 100_000, seed);
        assert_eq!(cells, 38);
        assert!(chi2 < 113.7, "ER(4, {p}): χ² = {chi2:.1} on 37 df");
    }
}

#[test]
fn disconnected_levels_are_errors_naming_the_level() {
    let mut g = paper_best();
    g.mid.n = 10;
    g.mid.p = 1e-4;
    let e = sample(&g, 1, FMNIST).unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(e, GenerateError::Disconnected { level: "mid", .. }),
        "{msg}"
    );
    assert!(msg.starts_with("generator.mid: ER(10, 0.0001)"), "{msg}");
    assert!(msg.contains("100000 draws"), "{msg}");
    let mut g = paper_best();
    g.bottom.n = 2;
    let msg = sample(&g, 1, FMNIST).unwrap_err().to_string();
    assert!(
        msg.starts_with("generator.bottom: WS(2, 1, 0.2) can never be connected"),
        "{msg}"
    );
    let mut g = paper_best();
    g.top.model = GraphModel::Er;
    g.top.p = 0.0;
    let msg = sample(&g, 1, FMNIST).unwrap_err().to_string();
    assert!(
        msg.starts_with("generator.top: ER(8, 0) can never be connected"),
        "{msg}"
    );
}

#[test]
fn old_arch_files_are_refused_with_an_explanation() {
    let a = sample(&paper_best(), 1, FMNIST).unwrap();
    let old = a.to_json().replace(nago_arch::ARCH_SCHEMA, "nago.arch/1");
    let e = Arch::from_json(&old).unwrap_err().to_string();
    assert!(
        e.contains("nago.arch/1") && e.contains("nago-generate --force"),
        "{e}"
    );
}

#[test]
fn the_head_has_the_generators_width_outside_the_parameter_limit() {
    let mut g = paper_best();
    g.param_limit = 60_000.0;
    let wide = sample(&g, 5, FMNIST).unwrap();
    g.head_channels = 128;
    let narrow = sample(&g, 5, FMNIST).unwrap();
    assert_eq!((wide.head.channels, narrow.head.channels), (1280, 128));
    // The head's dropout is the generator's too (0.2 by default).
    assert_eq!(wide.head.dropout, 0.2);
    g.head_dropout = 0.0;
    let undropped = sample(&g, 5, FMNIST).unwrap();
    assert_eq!(undropped.head.dropout, 0.0);
    assert_eq!(undropped.cells, narrow.cells);
    assert_eq!(undropped.counts, narrow.counts);
    // Same cells (the limit sizes them), a smaller head: in·c + BN 2c + c·classes + classes.
    assert_eq!(wide.stages, narrow.stages);
    assert_eq!(wide.cells, narrow.cells);
    let head = |c: u64| {
        let i = wide.head.in_ch as u64;
        i * c + 2 * c + c * 10 + 10
    };
    assert_eq!(
        wide.counts.params - narrow.counts.params,
        head(1280) - head(128)
    );
    check_arch(&narrow);
}
