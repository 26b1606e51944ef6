//! Pictures of architectures: Graphviz's rendering of `arch.dot` where `dot` is installed,
//! else a drawing of the cell graph made here.

use crate::svg::esc;
use nago_arch::Arch;
use std::fmt::Write;
use std::path::Path;
use std::process::Command;

/// How a picture was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renderer {
    /// `dot -Tsvg` on the trial's `arch.dot`.
    Graphviz,
    /// [`draw`]: the cell graph drawn by nago-report.
    Own,
}

/// Renders `dot_file` with Graphviz (`dot -Tsvg`), returning the `<svg>` element (XML prolog
/// and doctype removed so it can be inlined in HTML), or `None` when `dot` is missing or fails.
pub fn graphviz(dot_file: &Path) -> Option<String> {
    let out = Command::new("dot")
        .arg("-Tsvg")
        .arg(dot_file)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let start = text.find("<svg")?;
    Some(text[start..].trim_end().to_string())
}

/// A picture of `arch`: Graphviz when possible (from `dot_file`, else from
/// [`Arch::to_dot`]), else [`draw`].
pub fn picture(arch: &Arch, dot_file: Option<&Path>, use_graphviz: bool) -> (String, Renderer) {
    if use_graphviz {
        let svg = match dot_file.filter(|p| p.is_file()) {
            Some(p) => graphviz(p),
            None => {
                let tmp =
                    std::env::temp_dir().join(format!("nago-report-{}.dot", std::process::id()));
                let r = std::fs::write(&tmp, arch.to_dot())
                    .ok()
                    .and_then(|_| graphviz(&tmp));
                let _ = std::fs::remove_file(&tmp);
                r
            }
        };
        if let Some(s) = svg {
            return (s, Renderer::Graphviz);
        }
    }
    (draw(arch), Renderer::Own)
}

const STAGE_FILL: [&str; 3] = ["#cfe2f3", "#d9ead3", "#fce5cd"];

/// The cell graph drawn without Graphviz: stem, one box per cell (coloured by stage, with a
/// small square per op-graph and its operation count), the head; arcs for the cell inputs.
pub fn draw(arch: &Arch) -> String {
    let n = arch.cells.len();
    let bw = 92.0;
    let gap = 34.0;
    let bh = 74.0;
    let width = 40.0 + (n as f64 + 2.0) * (bw + gap);
    let base_y = 150.0;
    let height = base_y + bh + 70.0;
    let cx = |k: usize| 20.0 + k as f64 * (bw + gap); // k = 0 stem, 1..=n cells, n+1 head
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"Helvetica,Arial,sans-serif\" data-marks=\"{}\"><rect width=\"{width:.0}\" height=\"{height:.0}\" fill=\"#fff\"/>",
        n + 2
    );
    let c = arch.counts;
    let _ = write!(
        s,
        "<text x=\"10\" y=\"18\" font-size=\"12\">seed {}: {} params, {:.1} M MACs, width ×{} (drawn by nago-report; Graphviz not used)</text>",
        arch.seed,
        c.params,
        c.macs as f64 / 1e6,
        arch.width_multiplier
    );
    // Arcs first (under the boxes).
    let arc = |s: &mut String, from: usize, to: usize, label: &str| {
        let (x1, x2) = (cx(from) + bw / 2.0, cx(to) + bw / 2.0);
        let y = base_y;
        if to == from + 1 {
            let _ = write!(
                s,
                "<path d=\"M{:.1},{:.1}L{:.1},{:.1}\" stroke=\"#555\" stroke-width=\"1.4\" marker-end=\"url(#arr)\"/>",
                cx(from) + bw,
                y + bh / 2.0,
                cx(to),
                y + bh / 2.0
            );
        } else {
            let h = 25.0 + 12.0 * (to - from) as f64;
            let _ = write!(
                s,
                "<path d=\"M{x1:.1},{y:.1}C{x1:.1},{:.1} {x2:.1},{:.1} {x2:.1},{y:.1}\" fill=\"none\" stroke=\"#555\" stroke-width=\"1.2\" marker-end=\"url(#arr)\"><title>{}</title></path>",
                y - h,
                y - h,
                esc(label)
            );
        }
    };
    s.push_str("<defs><marker id=\"arr\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"6\" markerHeight=\"6\" orient=\"auto-start-reverse\"><path d=\"M0,0L10,5L0,10z\" fill=\"#555\"/></marker></defs>");
    for (ci, cell) in arch.cells.iter().enumerate() {
        for e in &cell.merge.inputs {
            let from = e.from.map_or(0, |j| j as usize + 1);
            let mut label = String::new();
            if e.pool > 1 {
                label.push_str(&format!("pool/{} ", e.pool));
            }
            if let Some(p) = e.project {
                label.push_str(&format!("1x1 {}→{}", p.in_ch, p.out_ch));
            }
            arc(&mut s, from, ci + 1, &label);
        }
    }
    for e in &arch.output {
        if let Some(j) = e.from {
            arc(&mut s, j as usize + 1, n + 1, "output");
        }
    }
    let boxed = |s: &mut String, k: usize, fill: &str, lines: &[String]| {
        let _ = write!(
            s,
            "<rect x=\"{:.1}\" y=\"{base_y}\" width=\"{bw}\" height=\"{bh}\" rx=\"6\" fill=\"{fill}\" stroke=\"#333\"/>",
            cx(k)
        );
        for (i, l) in lines.iter().enumerate() {
            let _ = write!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\">{}</text>",
                cx(k) + bw / 2.0,
                base_y + 14.0 + 12.0 * i as f64,
                esc(l)
            );
        }
    };
    boxed(
        &mut s,
        0,
        "#dddddd",
        &[
            "stem".into(),
            format!(
                "{}×{}×{}",
                arch.input.channels, arch.input.height, arch.input.width
            ),
            format!("→ {} ch", arch.stem.last().map_or(0, |x| x.out_ch)),
        ],
    );
    for (ci, cell) in arch.cells.iter().enumerate() {
        let ops: usize = cell.opgraphs.iter().map(|g| g.ops.len()).sum();
        boxed(
            &mut s,
            ci + 1,
            STAGE_FILL[(cell.stage as usize).min(2)],
            &[
                format!("cell {ci} (stage {})", cell.stage),
                format!("{} ch, {}×{}", cell.channels, cell.height, cell.width),
                format!("{} op-graphs, {} ops", cell.opgraphs.len(), ops),
            ],
        );
        // One small square per op-graph, its op count inside.
        for (gi, g) in cell.opgraphs.iter().enumerate() {
            let x = cx(ci + 1) + 6.0 + (gi % 6) as f64 * 14.0;
            let y = base_y + 44.0 + (gi / 6) as f64 * 14.0;
            let pool = g.ops.iter().filter(|o| o.op.is_pool()).count();
            let _ = write!(
                s,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"12\" height=\"12\" fill=\"{}\" stroke=\"#333\" stroke-width=\"0.6\"><title>op-graph {gi}: {}</title></rect><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"8\" text-anchor=\"middle\">{}</text>",
                if pool > 0 { "#f4cccc" } else { "#fff" },
                esc(&g.ops.iter().map(|o| o.op.name()).collect::<Vec<_>>().join(", ")),
                x + 6.0,
                y + 9.0,
                g.ops.len()
            );
        }
    }
    boxed(
        &mut s,
        n + 1,
        "#dddddd",
        &[
            "head".into(),
            format!("1x1 → {}", arch.head.channels),
            format!("GAP → {} classes", arch.head.classes),
        ],
    );
    s.push_str("</svg>");
    s
}
