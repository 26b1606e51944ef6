//! The report's figures, each one SVG text.

use crate::data::{flat_number, flat_text, StudyData};
use crate::svg::{self, colormap, esc, fmt_num, Axis, Marker, Plot, PALETTE};
use nago_space::FlatValue;
use std::collections::BTreeMap;
use std::fmt::Write;

/// One figure of the report.
#[derive(Debug, Clone)]
pub struct Figure {
    /// A stable id (`pareto`, `hv-evals`, …), used by the HTML and its browser test.
    pub id: String,
    /// The heading.
    pub title: String,
    /// What the figure shows, in a sentence or two.
    pub caption: String,
    /// The `<svg>` element.
    pub svg: String,
}

const W: f64 = 760.0;
const H: f64 = 440.0;

fn budget_key(b: f64) -> String {
    fmt_num(b)
}

/// Trials in objective space (first two objectives): every trial coloured by budget (or by
/// round when every trial has the same budget), failed ones as red crosses at the top edge,
/// the Pareto front ringed and joined by a staircase.
pub fn pareto(d: &StudyData) -> Figure {
    let title = "Pareto front in objective space".to_string();
    let id = "pareto".to_string();
    if d.objectives.len() < 2 {
        return Figure {
            id,
            title: title.clone(),
            caption: "The study has a single objective; see the hypervolume figures.".into(),
            svg: svg::message(W, H, &title, "single-objective study"),
        };
    }
    let (ox, oy) = (&d.objectives[1], &d.objectives[0]);
    let scored = d.scored();
    let front = d.pareto();
    let mut xs: Vec<f64> = Vec::new();
    let mut ys: Vec<f64> = Vec::new();
    for t in &d.trials {
        if let Some(v) = t.metric(&ox.metric) {
            xs.push(v);
        }
    }
    for &i in &scored {
        ys.push(d.trials[i].metric(&oy.metric).unwrap_or(f64::NAN));
    }
    let failed: Vec<usize> = (0..d.trials.len())
        .filter(|&i| d.trials[i].is_failed())
        .collect();
    // Failed trials are drawn in a band above the best-known worst value.
    let mut yax = Axis::fit(oy.label(), &ys, oy.log);
    let fail_y = if failed.is_empty() {
        None
    } else {
        let hi = yax.max;
        let span = if yax.log {
            hi / yax.min
        } else {
            yax.max - yax.min
        };
        let fy = if yax.log {
            hi * span.powf(0.06)
        } else {
            hi + span * 0.06
        };
        yax.max = if yax.log {
            hi * span.powf(0.12)
        } else {
            hi + span * 0.12
        };
        Some(fy)
    };
    let xax = Axis::fit(ox.label(), &xs, ox.log);
    let mut p = Plot::new(&title, xax, yax, W, H);
    let budgets: Vec<String> = {
        let mut b: Vec<f64> = d.trials.iter().map(|t| t.proposal.budget).collect();
        b.sort_by(|a, b| a.partial_cmp(b).unwrap());
        b.dedup();
        b.into_iter().map(budget_key).collect()
    };
    let by_budget = budgets.len() > 1;
    let rounds: Vec<u32> = {
        let mut r: Vec<u32> = d.trials.iter().map(|t| t.proposal.round).collect();
        r.sort_unstable();
        r.dedup();
        r
    };
    let color_of = |i: usize| -> String {
        let t = &d.trials[i];
        if by_budget {
            let k = budgets
                .iter()
                .position(|b| *b == budget_key(t.proposal.budget))
                .unwrap_or(0);
            PALETTE[k % PALETTE.len()].to_string()
        } else {
            let k = rounds
                .iter()
                .position(|&r| r == t.proposal.round)
                .unwrap_or(0);
            colormap(if rounds.len() > 1 {
                k as f64 / (rounds.len() - 1) as f64
            } else {
                0.5
            })
        }
    };
    let tip = |i: usize| -> String {
        let t = &d.trials[i];
        let mut s = format!(
            "{} (round {}, budget {} epochs, {})",
            t.id,
            t.proposal.round,
            fmt_num(t.proposal.budget),
            t.status()
        );
        for o in &d.objectives {
            if let Some(v) = t.metric(&o.metric) {
                let _ = write!(s, "\n{} = {}", o.metric, fmt_num(v));
            }
        }
        s
    };
    let front_pts: Vec<(f64, f64)> = front
        .iter()
        .map(|&i| {
            let t = &d.trials[i];
            (
                t.metric(&ox.metric).unwrap_or(f64::NAN),
                t.metric(&oy.metric).unwrap_or(f64::NAN),
            )
        })
        .collect();
    let mut sorted = front_pts.clone();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    p.steps(&sorted, "#111", 1.2, "Pareto front");
    for &i in &scored {
        if front.contains(&i) {
            continue;
        }
        let t = &d.trials[i];
        let (x, y) = (t.metric(&ox.metric).unwrap(), t.metric(&oy.metric).unwrap());
        p.dot(x, y, 5.0, &color_of(i), false, &tip(i));
    }
    for &i in &front {
        let t = &d.trials[i];
        let (x, y) = (t.metric(&ox.metric).unwrap(), t.metric(&oy.metric).unwrap());
        p.dot(x, y, 6.5, &color_of(i), true, &tip(i));
    }
    let mut n_failed_drawn = 0;
    if let Some(fy) = fail_y {
        for &i in &failed {
            if let Some(x) = d.trials[i].metric(&ox.metric) {
                p.cross(x, fy, "#d62728", &tip(i));
                n_failed_drawn += 1;
            }
        }
    }
    if by_budget {
        for (k, b) in budgets.iter().enumerate() {
            p.legend(
                &format!("budget {b} epochs"),
                PALETTE[k % PALETTE.len()],
                Marker::Dot,
            );
        }
    } else if rounds.len() > 1 {
        p.legend(&format!("round {}", rounds[0]), &colormap(0.0), Marker::Dot);
        p.legend(
            &format!("round {}", rounds[rounds.len() - 1]),
            &colormap(1.0),
            Marker::Dot,
        );
    } else {
        p.legend("trial", &colormap(0.5), Marker::Dot);
    }
    p.legend("Pareto-optimal", "#dddddd", Marker::Ring);
    if !failed.is_empty() {
        p.legend(
            &format!("failed ({})", failed.len()),
            "#d62728",
            Marker::Cross,
        );
    }
    Figure {
        id,
        title,
        caption: format!(
            "{} completed evaluations, {} on the Pareto front (ringed, joined by the staircase), {} failed{}. \
             Colour: {}. Axes in the metrics' own units (a log axis where the study says log); the front \
             compares the study's model units (natural log where log), which order the points the same way. \
             Hover a point for its trial id.",
            scored.len(),
            front.len(),
            failed.len(),
            if n_failed_drawn > 0 {
                " (red crosses in the band above the plot, at their size)"
            } else {
                ""
            },
            if by_budget {
                "training budget"
            } else {
                "round (dark = early, yellow = late)"
            }
        ),
        svg: p.finish(),
    }
}

/// Hypervolume against the number of completed evaluations (`by_time` false) or against
/// wall time since the study's first proposal (`by_time` true).
pub fn hypervolume(d: &StudyData, by_time: bool) -> Figure {
    let (id, title) = if by_time {
        ("hv-time", "Hypervolume against wall time")
    } else {
        ("hv-evals", "Hypervolume against evaluations")
    };
    // nago-update's own hypervolume (trials.parquet) where it exists, else recomputed here.
    let from_table: Option<Vec<(usize, f64)>> = d.tables.as_ref().and_then(|t| {
        let v: Vec<(usize, f64)> = t
            .hypervolume
            .iter()
            .filter_map(|(id, _, hv)| {
                d.trials
                    .iter()
                    .position(|tr| tr.id == *id)
                    .map(|i| (i, *hv))
            })
            .collect();
        (!v.is_empty()).then_some(v)
    });
    let table = from_table.is_some();
    let trace = from_table.unwrap_or_else(|| d.hypervolume_trace());
    let caption = if table {
        "Hypervolume as nago-update records it in trials.parquet (column hypervolume): after each evaluation in the \
         table's order (round, trial, budget), of the feasible front at the front's budget, in the study's model units \
         (minimised; natural log where the study says log) with its reference point."
            .to_string()
    } else {
        "Hypervolume recomputed from the trial files as nago-update computes trials.parquet's column (no \
         trials.parquet yet): after each evaluation in (round, trial) order, of the feasible front at the budget \
         nago-update compares, in the study's model units (minimised; natural log where the study says log) with \
         the study's reference point."
            .to_string()
    };
    let caption = match d.model_hypervolume() {
        Some(m) => format!(
            "{caption} The model's posterior means at the same evaluations (the front without the luck of \
             single noisy observations; surrogate.json model_hypervolume) give {m:.4}."
        ),
        None => caption,
    };
    if trace.is_empty() {
        let why = if d.objectives.len() > 3 {
            "exact hypervolume: at most three objectives"
        } else {
            "no completed trial yet"
        };
        return Figure {
            id: id.into(),
            title: title.into(),
            caption,
            svg: svg::message(W, H, title, why),
        };
    }
    let pts: Vec<(f64, f64)> = if by_time {
        let mut p: Vec<(f64, f64)> = trace
            .iter()
            .filter_map(|&(i, hv)| d.trials[i].finished_s.map(|s| (s / 60.0, hv)))
            .collect();
        // By time: the best hypervolume reached so far at each finishing time.
        p.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut best = f64::NEG_INFINITY;
        for q in p.iter_mut() {
            best = best.max(q.1);
            q.1 = best;
        }
        p
    } else {
        trace
            .iter()
            .enumerate()
            .map(|(k, &(_, hv))| ((k + 1) as f64, hv))
            .collect()
    };
    let xs: Vec<f64> = std::iter::once(0.0)
        .chain(pts.iter().map(|p| p.0))
        .collect();
    let ys: Vec<f64> = std::iter::once(0.0)
        .chain(pts.iter().map(|p| p.1))
        .collect();
    let xlabel = if by_time {
        "wall time since the first proposal [min]"
    } else {
        "completed evaluations"
    };
    let xax = Axis::fit(xlabel, &xs, false);
    let xax = if by_time { xax } else { xax.integers() };
    let mut p = Plot::new(
        title,
        xax,
        Axis::fit("hypervolume (model units)", &ys, false),
        W,
        H,
    );
    p.steps(&pts, PALETTE[0], 2.5, "hypervolume");
    for &(x, y) in &pts {
        p.dot(
            x,
            y,
            3.5,
            PALETTE[0],
            false,
            &format!("{} → {:.4}", fmt_num(x), y),
        );
    }
    p.legend("nago (this study)", PALETTE[0], Marker::Line);
    Figure {
        id: id.into(),
        title: title.into(),
        caption: if by_time {
            format!("{caption} Time is taken from the files' modification times.")
        } else {
            caption
        },
        svg: p.finish(),
    }
}

/// Parallel coordinates of the searched generator hyperparameters, one line per completed
/// trial coloured by the first objective, Pareto-optimal trials drawn thick.
pub fn parallel(d: &StudyData) -> Figure {
    let id = "parallel".to_string();
    let title = "Generator hyperparameters (parallel coordinates)".to_string();
    let names = d.varying_params();
    let scored = d.scored();
    if scored.is_empty() || names.is_empty() {
        return Figure {
            id,
            title: title.clone(),
            caption: "No completed trial yet.".into(),
            svg: svg::message(W, H, &title, "no completed trial yet"),
        };
    }
    let obj = &d.objectives[0];
    let flats: BTreeMap<usize, BTreeMap<String, FlatValue>> = scored
        .iter()
        .map(|&i| {
            (
                i,
                d.trials[i].proposal.generator.flat().into_iter().collect(),
            )
        })
        .collect();
    // Each axis: numeric range, or the sorted distinct strings of a categorical column.
    struct Ax {
        name: String,
        lo: f64,
        hi: f64,
        cats: Vec<String>,
    }
    let mut axes: Vec<Ax> = Vec::new();
    for n in &names {
        let vals: Vec<&FlatValue> = flats.values().filter_map(|f| f.get(n)).collect();
        let nums: Vec<f64> = vals.iter().filter_map(|v| flat_number(v)).collect();
        if nums.len() == vals.len() {
            let lo = nums.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = nums.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            axes.push(Ax {
                name: n.clone(),
                lo,
                hi,
                cats: Vec::new(),
            });
        } else {
            let mut cats: Vec<String> = vals.iter().map(|v| flat_text(v)).collect();
            cats.sort();
            cats.dedup();
            axes.push(Ax {
                name: n.clone(),
                lo: 0.0,
                hi: (cats.len().max(2) - 1) as f64,
                cats,
            });
        }
    }
    let ovals: Vec<f64> = scored
        .iter()
        .map(|&i| d.trials[i].metric(&obj.metric).unwrap())
        .collect();
    let olo = ovals.iter().copied().fold(f64::INFINITY, f64::min);
    let ohi = ovals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let n_ax = axes.len() + 1;
    let width = (120.0 * n_ax as f64).clamp(W, 1400.0);
    let dense = n_ax > 10;
    let (left, right, top, bottom) = (50.0, 60.0, if dense { 120.0 } else { 72.0 }, 40.0);
    let axis_x = |k: usize| -> f64 {
        if n_ax == 1 {
            width / 2.0
        } else {
            left + (width - left - right) * k as f64 / (n_ax - 1) as f64
        }
    };
    let ypix = |f: f64| -> f64 { H - bottom - f.clamp(0.0, 1.0) * (H - top - bottom) };
    let frac = |lo: f64, hi: f64, v: f64| if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
    let front = d.pareto();
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{H}\" viewBox=\"0 0 {width} {H}\" font-family=\"Helvetica,Arial,sans-serif\" data-marks=\"{}\"><rect width=\"{width}\" height=\"{H}\" fill=\"#fff\"/><text x=\"{:.1}\" y=\"20\" font-size=\"14\" text-anchor=\"middle\" font-weight=\"bold\">{}</text>",
        scored.len(),
        width / 2.0,
        esc(&title)
    );
    // Lines: non-front first, the front on top.
    let mut order: Vec<(usize, f64)> = scored.iter().copied().zip(ovals.iter().copied()).collect();
    order.sort_by_key(|(i, _)| front.contains(i));
    for (i, ov) in order {
        let f = &flats[&i];
        let mut path = String::new();
        for (k, ax) in axes.iter().enumerate() {
            let v = f.get(&ax.name);
            let fr = match v {
                Some(v) if ax.cats.is_empty() => frac(ax.lo, ax.hi, flat_number(v).unwrap()),
                Some(v) => {
                    let t = flat_text(v);
                    let pos = ax.cats.iter().position(|c| *c == t).unwrap_or(0);
                    frac(ax.lo, ax.hi, pos as f64)
                }
                None => 0.5,
            };
            let _ = write!(
                path,
                "{}{:.1},{:.1}",
                if k == 0 { "M" } else { "L" },
                axis_x(k),
                ypix(fr)
            );
        }
        let fo = frac(olo, ohi, ov);
        let _ = write!(path, "L{:.1},{:.1}", axis_x(axes.len()), ypix(fo));
        let good = match obj.goal {
            nago_space::Goal::Min => 1.0 - fo,
            nago_space::Goal::Max => fo,
        };
        let on_front = front.contains(&i);
        let _ = write!(
            s,
            "<path class=\"mark\" d=\"{path}\" fill=\"none\" stroke=\"{}\" stroke-width=\"{}\" stroke-opacity=\"{}\"><title>{}: {} = {}</title></path>",
            colormap(good),
            if on_front { 3.0 } else { 1.2 },
            if on_front { 1.0 } else { 0.6 },
            esc(&d.trials[i].id),
            esc(&obj.metric),
            fmt_num(ov)
        );
    }
    // Axes with their ranges.
    let mut ax_draw = |k: usize, name: &str, lo_t: String, hi_t: String| {
        let x = axis_x(k);
        let (y0, y1) = (ypix(0.0), ypix(1.0));
        let label = if dense {
            format!(
                "<text transform=\"translate({x:.1},{:.1}) rotate(-40)\" font-size=\"11\" font-weight=\"bold\">{}</text>",
                y1 - 16.0,
                esc(name)
            )
        } else {
            format!(
                "<text x=\"{x:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\" font-weight=\"bold\">{}</text>",
                y1 - 16.0,
                esc(name)
            )
        };
        let fs = if dense { 8 } else { 10 };
        let _ = write!(
            s,
            "<line x1=\"{x:.1}\" y1=\"{y0:.1}\" x2=\"{x:.1}\" y2=\"{y1:.1}\" stroke=\"#333\"/>{label}<text x=\"{x:.1}\" y=\"{:.1}\" font-size=\"{fs}\" text-anchor=\"middle\">{}</text><text x=\"{x:.1}\" y=\"{:.1}\" font-size=\"{fs}\" text-anchor=\"middle\">{}</text>",
            y1 - 4.0,
            esc(&hi_t),
            y0 + 14.0,
            esc(&lo_t)
        );
    };
    for (k, ax) in axes.iter().enumerate() {
        if ax.cats.is_empty() {
            ax_draw(k, &ax.name, fmt_num(ax.lo), fmt_num(ax.hi));
        } else {
            ax_draw(
                k,
                &ax.name,
                ax.cats[0].clone(),
                ax.cats.last().cloned().unwrap_or_default(),
            );
        }
    }
    ax_draw(axes.len(), &obj.metric, fmt_num(olo), fmt_num(ohi));
    s.push_str("</svg>");
    Figure {
        id,
        title,
        caption: format!(
            "One line per completed evaluation through the generator hyperparameters that vary in this study \
             (each axis spans the values seen), ending at {}. Colour: {} (yellow = best); Pareto-optimal trials are thick.",
            obj.metric, obj.metric
        ),
        svg: s,
    }
}

/// Learning curves of the Pareto-optimal trials, from their `epochs.parquet`.
pub fn curves(d: &StudyData, best: &[usize], series: &[crate::epochs::Curve]) -> Figure {
    let id = "curves".to_string();
    let title = "Learning curves of the best trials".to_string();
    let with: Vec<&crate::epochs::Curve> = series.iter().filter(|c| !c.points.is_empty()).collect();
    if with.is_empty() {
        return Figure {
            id,
            title: title.clone(),
            caption: "No epochs.parquet among the Pareto-optimal trials yet.".into(),
            svg: svg::message(W, H, &title, "no per-epoch data for the best trials"),
        };
    }
    let metric = with[0].metric.clone();
    let xs: Vec<f64> = with
        .iter()
        .flat_map(|c| c.points.iter().map(|p| p.0))
        .collect();
    let ys: Vec<f64> = with
        .iter()
        .flat_map(|c| c.points.iter().map(|p| p.1))
        .collect();
    let mut p = Plot::new(
        &title,
        Axis::fit("epoch", &xs, false).integers(),
        Axis::fit(&metric, &ys, false),
        W,
        H,
    );
    for (k, c) in with.iter().enumerate() {
        let col = PALETTE[k % PALETTE.len()];
        p.line(&c.points, col, 2.0, false, &c.trial);
        for &(x, y) in &c.points {
            p.dot(
                x,
                y,
                2.5,
                col,
                false,
                &format!("{} epoch {}: {}", c.trial, fmt_num(x), fmt_num(y)),
            );
        }
        p.legend(&c.trial, col, Marker::Line);
        if let Some(tc) = &c.train {
            p.line(tc, col, 1.2, true, &format!("{} (training)", c.trial));
        }
    }
    let _ = (d, best);
    Figure {
        id,
        title,
        caption: format!(
            "{} per epoch of the Pareto-optimal trials (solid: validation; dashed: training, where recorded).",
            metric
        ),
        svg: p.finish(),
    }
}
