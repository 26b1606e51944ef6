//! Graphviz rendering of the hierarchy: a cluster per cell, a cluster per op-graph inside it.

use crate::{Arch, Edge};
use std::fmt::Write;

fn edge_label(e: &Edge) -> String {
    let mut parts = Vec::new();
    if e.pool > 1 {
        parts.push(format!("pool/{}", e.pool));
    }
    if let Some(p) = e.project {
        parts.push(format!("1x1 {}→{}", p.in_ch, p.out_ch));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" [label=\"{}\", fontsize=8]", parts.join(", "))
    }
}

pub(crate) fn render(a: &Arch) -> String {
    let mut s = String::new();
    let c = a.counts;
    let _ = writeln!(s, "digraph arch {{");
    let _ = writeln!(s, "  rankdir=TB; compound=true; newrank=true;");
    let _ = writeln!(
        s,
        "  label=\"seed {}: {} params, {:.1} M MACs, width x{}\"; labelloc=t; fontname=Helvetica;",
        a.seed,
        c.params,
        c.macs as f64 / 1e6,
        a.width_multiplier
    );
    let _ = writeln!(s, "  node [fontname=Helvetica, fontsize=10, style=filled];");
    let _ = writeln!(
        s,
        "  stem [shape=box, fillcolor=\"#dddddd\", label=\"stem\\n{}×{}×{} → {}\"];",
        a.input.channels,
        a.input.height,
        a.input.width,
        a.stem.last().map(|x| x.out_ch).unwrap_or(0)
    );
    let palette = ["#dbe9f6", "#fde3c8", "#dff2dc"];
    for (ci, cell) in a.cells.iter().enumerate() {
        let _ = writeln!(s, "  subgraph cluster_c{ci} {{");
        let _ = writeln!(
            s,
            "    label=\"cell {ci} · stage {} · {}ch {}×{} · merge {}\"; style=filled; fillcolor=\"{}\"; fontsize=10;",
            cell.stage,
            cell.channels,
            cell.height,
            cell.width,
            cell.merge.kind.name(),
            palette[cell.stage as usize % 3]
        );
        let _ = writeln!(s, "    c{ci}_in [shape=point]; c{ci}_out [shape=point];");
        for (gi, g) in cell.opgraphs.iter().enumerate() {
            let p = format!("c{ci}g{gi}");
            let _ = writeln!(s, "    subgraph cluster_{p} {{");
            let _ = writeln!(s, "      label=\"op-graph {gi}\"; style=\"rounded,filled\"; fillcolor=white; fontsize=9;");
            let _ = writeln!(s, "      {p}_in [shape=point]; {p}_out [shape=point];");
            for (oi, op) in g.ops.iter().enumerate() {
                let color = if op.op.is_pool() {
                    "#f4cccc"
                } else {
                    "#fff2cc"
                };
                let _ = writeln!(
                    s,
                    "      {p}o{oi} [shape=box, fillcolor=\"{color}\", label=\"{}\"];",
                    op.op.name()
                );
                for e in &op.merge.inputs {
                    match e.from {
                        None => {
                            let _ = writeln!(s, "      {p}_in -> {p}o{oi};");
                        }
                        Some(j) => {
                            let _ = writeln!(s, "      {p}o{j} -> {p}o{oi};");
                        }
                    }
                }
            }
            for &o in &g.outputs {
                let _ = writeln!(s, "      {p}o{o} -> {p}_out;");
            }
            let _ = writeln!(s, "    }}");
            for e in &g.merge.inputs {
                match e.from {
                    None => {
                        let _ = writeln!(s, "    c{ci}_in -> {p}_in;");
                    }
                    Some(j) => {
                        let _ = writeln!(s, "    c{ci}g{j}_out -> {p}_in;");
                    }
                }
            }
        }
        for &o in &cell.outputs {
            let _ = writeln!(s, "    c{ci}g{o}_out -> c{ci}_out;");
        }
        let _ = writeln!(s, "  }}");
        for e in &cell.merge.inputs {
            match e.from {
                None => {
                    let _ = writeln!(s, "  stem -> c{ci}_in [penwidth=2]{};", edge_label(e));
                }
                Some(j) => {
                    let _ = writeln!(s, "  c{j}_out -> c{ci}_in [penwidth=2]{};", edge_label(e));
                }
            }
        }
    }
    let _ = writeln!(
        s,
        "  head [shape=box, fillcolor=\"#dddddd\", label=\"head\\n1x1 → {} · GAP · dropout {} · linear → {}\"];",
        a.head.channels, a.head.dropout, a.head.classes
    );
    for e in &a.output {
        if let Some(j) = e.from {
            let _ = writeln!(s, "  c{j}_out -> head [penwidth=2]{};", edge_label(e));
        }
    }
    let _ = writeln!(s, "}}");
    s
}
