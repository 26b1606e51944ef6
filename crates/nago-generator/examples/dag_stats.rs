//! Statistics of sampled level graphs, one JSON line per graph, for comparing nago's graph
//! models with networkx (`make test-generator-nx`).
//!
//! Usage: `dag_stats MODEL N K P COUNT [SEED]` (MODEL: ws, er or ba). Each graph is drawn as a
//! level's graph is (redrawn until connected), on its own stream of SEED, and oriented from
//! lower to higher index. Prints `{"inputs": …, "outputs": …, "longest": …, "edges": [[u, v], …]}`
//! with `longest` the number of edges on the longest path.

use nago_generator::graphs::{connected, Dag};
use nago_generator::rng::Rng;
use nago_space::GraphModel;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 5 {
        eprintln!("usage: dag_stats MODEL N K P COUNT [SEED]");
        std::process::exit(2);
    }
    let model = GraphModel::from_name(&args[0]).expect("model: ws, er or ba");
    let n: usize = args[1].parse().expect("N");
    let k: usize = args[2].parse().expect("K");
    let p: f64 = args[3].parse().expect("P");
    let count: u64 = args[4].parse().expect("COUNT");
    let seed: u64 = args.get(5).map_or(0, |s| s.parse().expect("SEED"));
    let mut out = String::new();
    for i in 0..count {
        let mut rng = Rng::new(seed, i);
        let g = match connected(model, n, k, p, &mut rng) {
            Ok(g) => g,
            Err(e) => {
                eprintln!("dag_stats: {e}");
                std::process::exit(1);
            }
        };
        let dag = Dag::from_graph(&g);
        let inputs = dag.preds.iter().filter(|p| p.is_empty()).count();
        // Longest path (in edges) ending at each node; preds are lower-indexed.
        let mut depth = vec![0usize; dag.len()];
        for v in 0..dag.len() {
            depth[v] = dag.preds[v]
                .iter()
                .map(|&u| depth[u as usize] + 1)
                .max()
                .unwrap_or(0);
        }
        let longest = depth.iter().copied().max().unwrap_or(0);
        let mut edges: Vec<String> = Vec::new();
        for (v, preds) in dag.preds.iter().enumerate() {
            for &u in preds {
                edges.push(format!("[{u}, {v}]"));
            }
        }
        edges.sort();
        out.push_str(&format!(
            "{{\"inputs\": {inputs}, \"outputs\": {}, \"longest\": {longest}, \"edges\": [{}]}}\n",
            dag.outputs.len(),
            edges.join(", ")
        ));
    }
    print!("{out}");
}
