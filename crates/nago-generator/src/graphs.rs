//! Random-graph models, following their networkx definitions (which the paper used), on
//! petgraph undirected graphs, and the conversion of an undirected graph into a DAG.

use crate::rng::Rng;
use nago_space::GraphModel;
use petgraph::graph::{NodeIndex, UnGraph};
use petgraph::unionfind::UnionFind;

/// How many draws a connected sample may take before sampling gives up with
/// [`Disconnected`]. The method redraws until connected; the cap only turns a generator that
/// (practically) never gives a connected graph into an error instead of an endless loop.
///
/// In the paper's default space the hardest level is ER(8, 0.1), connected with probability
/// 0.005411 (exact, by the recurrence C(n) = 1 − Σ_{k<n} C(n−1, k−1)·C(k)·(1−p)^{k(n−k)});
/// every ER(n ≤ 10, p ≥ 0.1) is connected with probability ≥ 0.0054 and every WS(3..10,
/// 2..5, 0.1..0.9) with probability ≥ 0.92 (simulated). So all 10,000 draws fail with
/// probability ≤ (1 − 0.0054)^100000 < 1e-235 there (10,000 draws would already give
/// < 1e-23; the larger cap also lets extended spaces reach P(connected) ~ 1e-4, e.g.
/// ER(7, 0.055), at a cost of milliseconds when it is exhausted).
pub const MAX_DRAWS: usize = 100_000;

/// No connected graph: the model can never give one (`draws == 0`), or [`MAX_DRAWS`] draws
/// all gave a disconnected graph.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct Disconnected {
    /// The model.
    pub model: GraphModel,
    /// Number of nodes.
    pub n: usize,
    /// K after clipping to N − 1.
    pub k: usize,
    /// P.
    pub p: f64,
    /// Draws made (0: the model can never give a connected graph, so none was tried).
    pub draws: usize,
}

impl Disconnected {
    fn describe(&self) -> String {
        let (n, k, p) = (self.n, self.k, self.p);
        match (self.model, self.draws) {
            (GraphModel::Ws, 0) => format!(
                "WS({n}, {k}, {p}) can never be connected: K (clipped to N − 1) is below 2, so \
                 the ring has no edges; use K ≥ 2 and N ≥ 3"
            ),
            (GraphModel::Er, 0) => {
                format!("ER({n}, {p}) can never be connected: P is 0; use P > 0")
            }
            (model, draws) => {
                let what = match model {
                    GraphModel::Ws => format!("WS({n}, {k}, {p})"),
                    GraphModel::Er => format!("ER({n}, {p})"),
                    GraphModel::Ba => format!("BA({n}, {k})"),
                };
                format!(
                    "{what} gave no connected graph in {draws} draws (graphs are redrawn until \
                     connected); it is practically never connected: raise P or lower N"
                )
            }
        }
    }
}

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

/// Whether the nodes `0..n` (n ≤ 64) of a bit-set adjacency form one component.
#[inline]
fn bits_connected(adj: &[u64; 64], n: usize) -> bool {
    let all = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
    let (mut seen, mut frontier) = (1u64, 1u64);
    while frontier != 0 {
        let v = frontier.trailing_zeros() as usize;
        frontier &= frontier - 1;
        let new = adj[v] & !seen;
        seen |= new;
        frontier |= new;
    }
    seen == all
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
        return bits_connected(&adj, n);
    }
    let mut uf = UnionFind::<usize>::new(n);
    for e in g.edge_indices() {
        let (a, b) = g.edge_endpoints(e).expect("edge exists");
        uf.union(a.index(), b.index());
    }
    (1..n).all(|v| uf.equiv(0, v))
}

/// ER(n, p) redrawn until connected, on a bit-set adjacency (no graph is built for the
/// rejected draws). The pairs are drawn in networkx's order, (0, 1), (0, 2), …, and a draw is
/// abandoned as soon as it is sure to be disconnected: once the pairs of node u are drawn,
/// every edge of the nodes 0..=u is known, so if u's component lies within them and is not
/// the whole graph, no later pair can join it. Abandoning a draw that is certain to be
/// rejected leaves the distribution of the accepted graph unchanged (each draw is an
/// independent trial; the first connected one is kept).
fn connected_er(n: usize, p: f64, rng: &mut Rng) -> Option<Graph> {
    debug_assert!((2..=64).contains(&n));
    let all = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
    'draw: for _ in 0..MAX_DRAWS {
        let mut adj = [0u64; 64];
        for u in 0..n {
            for v in u + 1..n {
                if rng.uniform() < p {
                    adj[u] |= 1 << v;
                    adj[v] |= 1 << u;
                }
            }
            // u's component, from the edges known so far.
            let (mut seen, mut frontier) = (1u64 << u, 1u64 << u);
            while frontier != 0 {
                let w = frontier.trailing_zeros() as usize;
                frontier &= frontier - 1;
                let new = adj[w] & !seen;
                seen |= new;
                frontier |= new;
            }
            let known = if u == 63 {
                u64::MAX
            } else {
                (1u64 << (u + 1)) - 1
            };
            if seen & !known == 0 && seen != all {
                continue 'draw; // a finished component that is not the whole graph
            }
        }
        // Every pair was drawn (an early "connected" would not license skipping the rest),
        // and the last check, at u = n − 1, was the full connectivity test.
        let mut g = empty(n);
        for (u, &row) in adj.iter().enumerate().take(n) {
            let mut higher = row >> u >> 1;
            while higher != 0 {
                let v = u + 1 + higher.trailing_zeros() as usize;
                higher &= higher - 1;
                g.add_edge(ix(u), ix(v), ());
            }
        }
        return Some(g);
    }
    None
}

/// One connected graph of a level's model: `n` nodes, `k` clipped to `n − 1` (and at least
/// 1), redrawn until connected, as the method does: at most [`MAX_DRAWS`] draws, then
/// [`Disconnected`] (never a patched graph, which would change the distribution).
///
/// One node gives one node. Models that can never be connected are an error at once: WS
/// with K < 2 after clipping (no ring edges; so WS on two nodes), ER with P = 0. BA is
/// always connected.
pub fn connected(
    model: GraphModel,
    n: usize,
    k: usize,
    p: f64,
    rng: &mut Rng,
) -> Result<Graph, Disconnected> {
    if n <= 1 {
        return Ok(empty(n.max(1)));
    }
    let k = k.clamp(1, n - 1);
    let err = |draws| Disconnected {
        model,
        n,
        k,
        p,
        draws,
    };
    match model {
        GraphModel::Ba => Ok(barabasi_albert(n, k, rng)),
        GraphModel::Ws if k < 2 => Err(err(0)),
        GraphModel::Er if p <= 0.0 => Err(err(0)),
        GraphModel::Er if n <= 64 => connected_er(n, p, rng).ok_or(err(MAX_DRAWS)),
        _ => {
            for _ in 0..MAX_DRAWS {
                let g = match model {
                    GraphModel::Ws => watts_strogatz(n, k, p, rng),
                    _ => erdos_renyi(n, p, rng),
                };
                if is_connected(&g) {
                    return Ok(g);
                }
            }
            Err(err(MAX_DRAWS))
        }
    }
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
