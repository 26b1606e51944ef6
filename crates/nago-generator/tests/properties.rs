//! Property tests over thousands of random generators: structure, channels, determinism.

use nago_arch::{Arch, InputShape, Merge};
use nago_generator::graphs::{self, Dag};
use nago_generator::rng::Rng;
use nago_generator::sample;
use nago_space::{Domain, Generator, GraphModel, MergeKind, SimplexSpec, Space};
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
        let a = sample(&g, seed, FMNIST).unwrap();
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
        let g = graphs::connected(model, n, k, p, &mut rng);
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
        let a = sample(&g, seed, FMNIST).unwrap();
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
        // P = 0: WS is the plain ring lattice; ER has no edges and falls back to a chain.
        let mut r = Rng::new(seed, 0);
        let ring = graphs::connected(GraphModel::Ws, 8, 4, 0.0, &mut r);
        let lattice: Vec<_> = ring
            .edge_indices()
            .map(|e| ring.edge_endpoints(e).unwrap())
            .map(|(a, b)| (a.index().min(b.index()), a.index().max(b.index())))
            .collect();
        for (a, b) in lattice {
            let d = (b - a).min(8 - (b - a));
            assert!(d <= 2, "P=0 must not rewire");
        }
        let er0 = graphs::connected(GraphModel::Er, 6, 0, 0.0, &mut r);
        assert!(graphs::is_connected(&er0));
        assert_eq!(er0.edge_count(), 5);
        // P = 1: ER is complete.
        let er1 = graphs::connected(GraphModel::Er, 6, 0, 1.0, &mut r);
        assert_eq!(er1.edge_count(), 15);
        // P = 1: WS rewires everything yet stays connected with the same edge count.
        let ws1 = graphs::connected(GraphModel::Ws, 9, 4, 1.0, &mut r);
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

const PINNED: (u64, u64, u64) = (4_160_306, 432_935_248, 16_911_293_166_717_690_919);

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
