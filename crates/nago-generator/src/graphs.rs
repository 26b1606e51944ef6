//! Random-graph models, following their networkx definitions (which the paper used), on
//! petgraph undirected graphs, and the conversion of an undirected graph into a DAG.

use crate::rng::Rng;
use nago_space::GraphModel;
use petgraph::graph::{NodeIndex, UnGraph};
use petgraph::unionfind::UnionFind;

/// How many draws a connected sample may take before the components are joined by hand
/// (networkx's `connected_watts_strogatz_graph` uses the same bound).
pub const MAX_TRIES: usize = 100;

/// An undirected graph on nodes `0..n`.
pub type Graph = UnGraph<(), ()>;

fn empty(n: usize) -> Graph {
    let mut g = Graph::with_capacity(n, n * 3);
    for _ in 0..n {
        g.add_node(());
    }
    g
}

#[inline]
fn ix(i: usize) -> NodeIndex {
    NodeIndex::new(i)
}

/// Watts–Strogatz WS(n, k, p), exactly as networkx's `watts_strogatz_graph`: a ring lattice
/// joining each node to its ⌊k/2⌋ nearest neighbours on each side, then, for each ring
/// distance j and each node u in order, the edge (u, u+j) is rewired with probability p to
/// (u, w), w uniform among nodes that are neither u nor already joined to u (no rewiring
/// when u is joined to every other node). `k` must be < n.
pub fn watts_strogatz(n: usize, k: usize, p: f64, rng: &mut Rng) -> Graph {
    let mut g = empty(n);
    let half = k / 2;
    for j in 1..=half {
        for u in 0..n {
            g.add_edge(ix(u), ix((u + j) % n), ());
        }
    }
    for j in 1..=half {
        for u in 0..n {
            let v = (u + j) % n;
            if rng.uniform() < p {
                if g.neighbors(ix(u)).count() >= n - 1 {
                    continue;
                }
                let mut w = rng.below(n as u64) as usize;
                while w == u || g.find_edge(ix(u), ix(w)).is_some() {
                    w = rng.below(n as u64) as usize;
                }
                if let Some(e) = g.find_edge(ix(u), ix(v)) {
                    g.remove_edge(e);
                    g.add_edge(ix(u), ix(w), ());
                }
            }
        }
    }
    g
}

/// Erdős–Rényi G(n, p), as networkx's `gnp_random_graph`: each pair (u < v), in
/// lexicographic order, joined with probability p.
pub fn erdos_renyi(n: usize, p: f64, rng: &mut Rng) -> Graph {
    let mut g = empty(n);
    for u in 0..n {
        for v in u + 1..n {
            if rng.uniform() < p {
                g.add_edge(ix(u), ix(v), ());
            }
        }
    }
    g
}

/// Barabási–Albert BA(n, m), as networkx's `barabasi_albert_graph`: a star on m+1 nodes,
/// then each new node joins m distinct existing nodes drawn with probability proportional to
/// their degree. `1 ≤ m < n`. Always connected.
pub fn barabasi_albert(n: usize, m: usize, rng: &mut Rng) -> Graph {
    let mut g = empty(n);
    let mut repeated: Vec<usize> = Vec::with_capacity(2 * n * m);
    for v in 1..=m {
        g.add_edge(ix(0), ix(v), ());
        repeated.push(0);
        repeated.push(v);
    }
    let mut targets: Vec<usize> = Vec::with_capacity(m);
    for source in m + 1..n {
        targets.clear();
        while targets.len() < m {
            let x = repeated[rng.below(repeated.len() as u64) as usize];
            if !targets.contains(&x) {
                targets.push(x);
            }
        }
        targets.sort_unstable();
        for &t in &targets {
            g.add_edge(ix(source), ix(t), ());
            repeated.push(t);
            repeated.push(source);
        }
    }
    g
}

/// Whether the graph is connected (a graph of one node is).
pub fn is_connected(g: &Graph) -> bool {
    let n = g.node_count();
    if n <= 64 {
        // Graphs of the space have at most 64 nodes (`nago_space::MAX_NODES`): a bit-set
        // flood fill, with no allocation, is what keeps sampling fast.
        let mut adj = [0u64; 64];
        for e in g.edge_indices() {
            let (a, b) = g.edge_endpoints(e).expect("edge exists");
            adj[a.index()] |= 1 << b.index();
            adj[b.index()] |= 1 << a.index();
        }
        let all = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
        let (mut seen, mut frontier) = (1u64, 1u64);
        while frontier != 0 {
            let v = frontier.trailing_zeros() as usize;
            frontier &= frontier - 1;
            let new = adj[v] & !seen;
            seen |= new;
            frontier |= new;
        }
        return seen == all;
    }
    component_roots(g).iter().all(|&r| r == 0)
}

fn component_roots(g: &Graph) -> Vec<usize> {
    let n = g.node_count();
    let mut uf = UnionFind::<usize>::new(n);
    for e in g.edge_indices() {
        let (a, b) = g.edge_endpoints(e).expect("edge exists");
        uf.union(a.index(), b.index());
    }
    // Label each node by the smallest node of its component.
    let mut smallest = vec![usize::MAX; n];
    for v in 0..n {
        let r = uf.find(v);
        smallest[r] = smallest[r].min(v);
    }
    (0..n).map(|v| smallest[uf.find(v)]).collect()
}

/// Joins the components of `g` into one: for consecutive components (ordered by their
/// smallest node), an edge between their smallest nodes. The documented fallback when
/// [`MAX_TRIES`] draws gave no connected graph.
pub fn join_components(g: &mut Graph) {
    let roots = component_roots(g);
    let mut firsts: Vec<usize> = roots.clone();
    firsts.sort_unstable();
    firsts.dedup();
    for w in firsts.windows(2) {
        g.add_edge(ix(w[0]), ix(w[1]), ());
    }
}

/// One connected graph of a level's model: `n` nodes, `k` clipped to `n − 1` (and at least
/// 1), redrawn while disconnected (at most [`MAX_TRIES`] draws, then joined).
///
/// Small cases: one node gives one node; for WS, k < 2 gives no ring edges, so two nodes
/// always fall back to a single edge.
pub fn connected(model: GraphModel, n: usize, k: usize, p: f64, rng: &mut Rng) -> Graph {
    if n <= 1 {
        return empty(n.max(1));
    }
    let k = k.clamp(1, n - 1);
    let draw = |rng: &mut Rng| match model {
        GraphModel::Ws => watts_strogatz(n, k, p, rng),
        GraphModel::Er => erdos_renyi(n, p, rng),
        GraphModel::Ba => barabasi_albert(n, k, rng),
    };
    // Cases that can never be connected are not redrawn.
    let hopeless = match model {
        GraphModel::Ws => k < 2,
        GraphModel::Er => p <= 0.0,
        GraphModel::Ba => false,
    };
    let mut g = draw(rng);
    if !hopeless {
        let mut tries = 1;
        while !is_connected(&g) && tries < MAX_TRIES {
            g = draw(rng);
            tries += 1;
        }
    }
    if !is_connected(&g) {
        join_components(&mut g);
    }
    g
}

/// A directed acyclic view of an undirected graph on `0..n`: every edge points from the
/// lower index to the higher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dag {
    /// For each node, its predecessors in increasing order (empty: an input node).
    pub preds: Vec<Vec<u32>>,
    /// Nodes with no successor (the outputs), in increasing order.
    pub outputs: Vec<u32>,
}

impl Dag {
    /// Orients `g` from lower to higher index.
    pub fn from_graph(g: &Graph) -> Dag {
        let n = g.node_count();
        let mut preds = vec![Vec::new(); n];
        let mut has_succ = vec![false; n];
        for e in g.edge_indices() {
            let (a, b) = g.edge_endpoints(e).expect("edge exists");
            let (lo, hi) = if a.index() < b.index() {
                (a.index(), b.index())
            } else {
                (b.index(), a.index())
            };
            if lo != hi && !preds[hi].contains(&(lo as u32)) {
                preds[hi].push(lo as u32);
                has_succ[lo] = true;
            }
        }
        for p in &mut preds {
            p.sort_unstable();
        }
        let outputs = (0..n).filter(|&v| !has_succ[v]).map(|v| v as u32).collect();
        Dag { preds, outputs }
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.preds.len()
    }

    /// Whether the DAG has no nodes.
    pub fn is_empty(&self) -> bool {
        self.preds.is_empty()
    }
}
