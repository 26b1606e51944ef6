//! The report page: one self-contained HTML file with every figure inlined as SVG.

use crate::archpic::{self, Renderer};
use crate::best::{best_rows, final_cells, table_cells, Front};
use crate::data::StudyData;
use crate::epochs;
use crate::figures::{self, Figure};
use crate::svg::{esc, fmt_num};
use anyhow::{Context, Result};
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// Options of [`write_report`].
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// Where to write the page (default `<run>/report/index.html`).
    pub out: Option<PathBuf>,
    /// How many Pareto-optimal trials get learning curves and architecture pictures.
    pub max_best: usize,
    /// Use Graphviz (`dot`) for the architecture pictures when it is installed.
    pub graphviz: bool,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            out: None,
            max_best: 6,
            graphviz: true,
        }
    }
}

/// What [`write_report`] produced.
#[derive(Debug, Clone)]
pub struct ReportSummary {
    /// The page written.
    pub path: PathBuf,
    /// The ids of the figures on it, in page order.
    pub figures: Vec<String>,
    /// Architecture pictures drawn by Graphviz / by nago-report itself.
    pub graphviz_pictures: usize,
    /// Architecture pictures drawn without Graphviz.
    pub own_pictures: usize,
    /// Problems met while reading the study (also listed on the page).
    pub warnings: Vec<String>,
}

/// Builds every figure of a study.
pub fn build_figures(
    d: &StudyData,
    opts: &ReportOptions,
    warnings: &mut Vec<String>,
) -> (Vec<Figure>, usize, usize) {
    let mut figs = vec![
        figures::pareto(d),
        figures::hypervolume(d, false),
        figures::hypervolume(d, true),
        figures::parallel(d),
    ];
    let front = d.pareto();
    let best: Vec<usize> = front.iter().copied().take(opts.max_best).collect();
    let mut curves = Vec::new();
    for &i in &best {
        let t = &d.trials[i];
        let p = t.dir.epochs_path();
        if p.is_file() {
            match epochs::read_curve(&t.id, &p) {
                Ok(c) => curves.push(c),
                Err(e) => warnings.push(format!("trial {}: {e:#}", t.id)),
            }
        }
    }
    figs.push(figures::curves(d, &best, &curves));
    let (mut gv, mut own) = (0, 0);
    for &i in &best {
        let t = &d.trials[i];
        let Some(arch) = &t.arch else {
            warnings.push(format!("trial {}: no arch.json to draw", t.id));
            continue;
        };
        let (svg, how) = archpic::picture(arch, Some(&t.dir.dot_path()), opts.graphviz);
        match how {
            Renderer::Graphviz => gv += 1,
            Renderer::Own => own += 1,
        }
        let objs: Vec<String> = d
            .objectives
            .iter()
            .filter_map(|o| {
                t.metric(&o.metric)
                    .map(|v| format!("{} {}", o.metric, fmt_num(v)))
            })
            .collect();
        figs.push(Figure {
            id: format!("arch-{}", t.id),
            title: format!("Architecture of trial {}", t.id),
            caption: format!(
                "{}; {} cells, {} op-graphs, {} operations; {}.",
                objs.join(", "),
                arch.cells.len(),
                arch.n_opgraphs(),
                arch.n_ops(),
                match how {
                    Renderer::Graphviz => "drawn by Graphviz from arch.dot (one cluster per cell and op-graph)",
                    Renderer::Own => "drawn by nago-report (Graphviz not installed): cells coloured by stage, one small square per op-graph with its operation count",
                }
            ),
            svg,
        });
    }
    (figs, gv, own)
}

const STYLE: &str = "body{font-family:Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1500px}\
h1{font-size:22px}h2{font-size:17px;margin-top:28px}figure{margin:18px 0;padding:10px;border:1px solid #ddd;border-radius:6px;overflow-x:auto}\
figcaption{font-size:13px;color:#444;margin-top:6px}figure svg{max-width:100%;height:auto}.grid figure{flex:1 1 30%;min-width:320px;max-width:48%}figure.arch{max-height:820px;overflow:auto}figure.arch svg{width:100%;height:auto;min-width:260px;display:block;margin:auto}\
table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}th{background:#f3f3f3}\
td.path{text-align:left;font-family:monospace}.warn{color:#a00;font-size:12px}.grid{display:flex;flex-wrap:wrap;gap:12px}";

/// Renders the page.
pub fn render(d: &StudyData, figs: &[Figure], warnings: &[String]) -> String {
    let mut s = String::new();
    let st = &d.study;
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>nago report: {}</title><style>{STYLE}</style></head><body>\n",
        esc(&st.name)
    );
    let ok = d.trials.iter().filter(|t| t.is_ok()).count();
    let failed = d.trials.iter().filter(|t| t.is_failed()).count();
    let pending = d.trials.len() - ok - failed;
    let objs: Vec<String> = d.objectives.iter().map(|o| esc(&o.label())).collect();
    let _ = writeln!(
        s,
        "<h1>nago report: {}</h1><p>Study <code>{}</code>, dataset <b>{}</b>, objectives: {}. Trials: {} ({} completed, {} failed, {} pending); {} on the Pareto front.</p>",
        esc(&st.name),
        esc(&d.dir.root().display().to_string()),
        esc(&st.dataset.name),
        objs.join("; "),
        d.trials.len(),
        ok,
        failed,
        pending,
        d.pareto().len()
    );
    // The final round first: what the search delivers.
    if let Some((head, body)) = final_cells(d) {
        s.push_str("<h2>Final round (mean ± std over each generator's architectures, trained with the final protocol)</h2><table id=\"final\"><tr>");
        for h in &head {
            let _ = write!(s, "<th>{}</th>", esc(h));
        }
        s.push_str("</tr>");
        for r in &body {
            s.push_str("<tr>");
            for c in r {
                let _ = write!(s, "<td>{}</td>", esc(c));
            }
            s.push_str("</tr>");
        }
        s.push_str("</table>\n");
    }
    // Best-trials table.
    let rows = best_rows(d, Front::AllBudgets);
    let (head, body) = table_cells(d, &rows);
    s.push_str("<h2>Best trials (Pareto set of every evaluation, across budgets)</h2><table id=\"best\"><tr>");
    for h in &head {
        let _ = write!(s, "<th>{}</th>", esc(h));
    }
    s.push_str("</tr>");
    for r in &body {
        s.push_str("<tr>");
        let n = r.len();
        for (k, c) in r.iter().enumerate() {
            let class = if k + 2 >= n { " class=\"path\"" } else { "" };
            let _ = write!(s, "<td{class}>{}</td>", esc(c));
        }
        s.push_str("</tr>");
    }
    s.push_str("</table>\n");
    let mut in_arch = false;
    for f in figs {
        let is_arch = f.id.starts_with("arch-");
        if is_arch && !in_arch {
            s.push_str("<h2>Architectures on the front</h2>\n<div class=\"grid\">\n");
            in_arch = true;
        } else if !is_arch {
            let _ = writeln!(s, "<h2>{}</h2>", esc(&f.title));
        }
        let _ = writeln!(
            s,
            "<figure class=\"fig{}\" id=\"fig-{}\" data-fig=\"{}\">{}<figcaption>{}{}</figcaption></figure>",
            if is_arch { " arch" } else { "" },
            esc(&f.id),
            esc(&f.id),
            f.svg,
            if is_arch { format!("<b>{}</b>: ", esc(&f.title)) } else { String::new() },
            esc(&f.caption)
        );
    }
    if in_arch {
        s.push_str("</div>\n");
    }
    if !warnings.is_empty() {
        s.push_str("<h2>Warnings</h2><ul class=\"warn\">");
        for w in warnings {
            let _ = write!(s, "<li>{}</li>", esc(w));
        }
        s.push_str("</ul>");
    }
    let _ = writeln!(
        s,
        "<p style=\"font-size:11px;color:#888\">Written by nago-report {}. Static SVG; no network access needed.</p></body></html>",
        env!("CARGO_PKG_VERSION")
    );
    s
}

/// Reads the study at `run` and writes its report page.
pub fn write_report(run: &Path, opts: &ReportOptions) -> Result<ReportSummary> {
    let d = StudyData::load(run)?;
    let mut warnings = d.warnings.clone();
    let (figs, gv, own) = build_figures(&d, opts, &mut warnings);
    let html = render(&d, &figs, &warnings);
    let path = opts
        .out
        .clone()
        .unwrap_or_else(|| run.join("report").join("index.html"));
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("{}: cannot create", parent.display()))?;
    }
    nago_store::atomic_write(&path, html.as_bytes())
        .with_context(|| format!("{}: cannot write", path.display()))?;
    Ok(ReportSummary {
        path,
        figures: figs.iter().map(|f| f.id.clone()).collect(),
        graphviz_pictures: gv,
        own_pictures: own,
        warnings,
    })
}
