//! A small SVG chart builder: axes with linear or logarithmic ticks, markers, lines, legends.
//!
//! Every figure of the report is plain SVG text (no fonts to embed, no scripts), so the page
//! works offline and renders identically in every browser.

use std::fmt::Write;

/// Escapes text for SVG/HTML content and attribute values.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Ten distinct colours (Tableau 10).
pub const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#ff9da7", "#9c755f",
    "#bab0ac", "#e15759",
];

/// The colour for a value in [0, 1] on a viridis-like map (dark blue → green → yellow).
pub fn colormap(t: f64) -> String {
    const STOPS: [(f64, f64, f64); 5] = [
        (68.0, 1.0, 84.0),
        (59.0, 82.0, 139.0),
        (33.0, 145.0, 140.0),
        (94.0, 201.0, 98.0),
        (253.0, 231.0, 37.0),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let x = t * (STOPS.len() - 1) as f64;
    let i = (x.floor() as usize).min(STOPS.len() - 2);
    let f = x - i as f64;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    let c = |u: f64, v: f64| (u + (v - u) * f).round() as u8;
    format!("#{:02x}{:02x}{:02x}", c(a.0, b.0), c(a.1, b.1), c(a.2, b.2))
}

/// One axis: its label, range and scale.
#[derive(Debug, Clone)]
pub struct Axis {
    /// The label, units included.
    pub label: String,
    /// Lower end of the range.
    pub min: f64,
    /// Upper end of the range.
    pub max: f64,
    /// Logarithmic (base 10) scale; the range must then be positive.
    pub log: bool,
    /// Ticks only at whole numbers (epochs, evaluation counts).
    pub integer: bool,
}

impl Axis {
    /// An axis spanning `values` with 5% padding (a unit range around a single value).
    pub fn fit(label: impl Into<String>, values: &[f64], log: bool) -> Axis {
        let vals: Vec<f64> = values
            .iter()
            .copied()
            .filter(|v| v.is_finite() && (!log || *v > 0.0))
            .collect();
        let (mut lo, mut hi) = vals
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        if vals.is_empty() {
            (lo, hi) = if log { (1.0, 10.0) } else { (0.0, 1.0) };
        }
        if log {
            let (l, h) = (lo.log10(), hi.log10());
            let pad = ((h - l) * 0.05).max(0.05);
            Axis {
                label: label.into(),
                min: 10f64.powf(l - pad),
                max: 10f64.powf(h + pad),
                log,
                integer: false,
            }
        } else {
            let span = hi - lo;
            let pad = if span > 0.0 {
                span * 0.05
            } else {
                lo.abs().max(1.0) * 0.1
            };
            Axis {
                label: label.into(),
                min: lo - pad,
                max: hi + pad,
                log,
                integer: false,
            }
        }
    }

    /// The same axis with ticks at whole numbers only.
    pub fn integers(mut self) -> Axis {
        self.integer = true;
        self
    }

    /// Where `v` lies on the axis, 0 at `min` and 1 at `max`.
    pub fn frac(&self, v: f64) -> f64 {
        if self.log {
            let (l, h) = (self.min.log10(), self.max.log10());
            (v.max(f64::MIN_POSITIVE).log10() - l) / (h - l)
        } else {
            (v - self.min) / (self.max - self.min)
        }
    }

    /// Tick positions and labels.
    pub fn ticks(&self) -> Vec<(f64, String)> {
        if self.log {
            let (l, h) = (self.min.log10(), self.max.log10());
            let mut out = Vec::new();
            let mults: &[f64] = if h - l < 1.5 {
                &[1.0, 2.0, 5.0]
            } else {
                &[1.0]
            };
            for e in (l.floor() as i32)..=(h.ceil() as i32) {
                for m in mults {
                    let v = m * 10f64.powi(e);
                    if v >= self.min && v <= self.max {
                        out.push((v, fmt_num(v)));
                    }
                }
            }
            if out.len() < 3 {
                // A narrow range: evenly spaced round values inside it.
                let lin = Axis {
                    log: false,
                    ..self.clone()
                };
                out = lin.ticks();
            }
            out
        } else {
            let mut step = nice_step((self.max - self.min) / 5.0);
            if self.integer {
                step = step.max(1.0).round();
            }
            let mut v = (self.min / step).ceil() * step;
            let mut out = Vec::new();
            while v <= self.max + step * 1e-9 {
                let r = if v.abs() < step * 1e-9 { 0.0 } else { v };
                out.push((r, fmt_num(r)));
                v += step;
            }
            out
        }
    }
}

fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let e = 10f64.powf(raw.log10().floor());
    let f = raw / e;
    let m = if f < 1.5 {
        1.0
    } else if f < 3.5 {
        2.0
    } else if f < 7.5 {
        5.0
    } else {
        10.0
    };
    m * e
}

/// A compact number: 1.2M, 35k, 0.05, 120.
pub fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{}G", trim(v / 1e9))
    } else if a >= 1e6 {
        format!("{}M", trim(v / 1e6))
    } else if a >= 1e4 {
        format!("{}k", trim(v / 1e3))
    } else if a == 0.0 {
        "0".into()
    } else if a >= 1.0 {
        trim(v)
    } else {
        let s = format!("{v:.4}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        s.to_string()
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A 2-D plot being drawn: marks are added in data coordinates, then [`Plot::finish`]
/// wraps them in axes.
pub struct Plot {
    width: f64,
    height: f64,
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
    /// The horizontal axis.
    pub x: Axis,
    /// The vertical axis.
    pub y: Axis,
    title: String,
    body: String,
    legend: Vec<(String, String, Marker)>,
    marks: usize,
}

/// A legend marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// A filled circle.
    Dot,
    /// A cross (failed trials).
    Cross,
    /// A line segment.
    Line,
    /// A circle with a thick dark ring (Pareto-optimal trials).
    Ring,
}

impl Plot {
    /// A plot of `width`×`height` pixels.
    pub fn new(title: &str, x: Axis, y: Axis, width: f64, height: f64) -> Plot {
        Plot {
            width,
            height,
            left: 78.0,
            right: 170.0,
            top: 34.0,
            bottom: 52.0,
            x,
            y,
            title: title.to_string(),
            body: String::new(),
            legend: Vec::new(),
            marks: 0,
        }
    }

    /// Pixel column of data value `v`.
    pub fn px(&self, v: f64) -> f64 {
        self.left + self.x.frac(v) * (self.width - self.left - self.right)
    }

    /// Pixel row of data value `v`.
    pub fn py(&self, v: f64) -> f64 {
        self.height - self.bottom - self.y.frac(v) * (self.height - self.top - self.bottom)
    }

    /// Number of data marks drawn so far.
    pub fn marks(&self) -> usize {
        self.marks
    }

    /// A filled circle with a hover title.
    pub fn dot(&mut self, x: f64, y: f64, r: f64, fill: &str, ring: bool, title: &str) {
        let (cx, cy) = (self.px(x), self.py(y));
        let stroke = if ring {
            "stroke=\"#111\" stroke-width=\"2.2\""
        } else {
            "stroke=\"#fff\" stroke-width=\"0.6\""
        };
        let _ = write!(
            self.body,
            "<circle class=\"mark\" cx=\"{cx:.1}\" cy=\"{cy:.1}\" r=\"{r}\" fill=\"{fill}\" fill-opacity=\"0.85\" {stroke}><title>{}</title></circle>",
            esc(title)
        );
        self.marks += 1;
    }

    /// A cross marker (at pixel row `py_override` when given, e.g. a band above the plot).
    pub fn cross(&mut self, x: f64, y: f64, color: &str, title: &str) {
        let (cx, cy) = (self.px(x), self.py(y));
        let s = 4.5;
        let _ = write!(
            self.body,
            "<path class=\"mark\" d=\"M{:.1},{:.1}L{:.1},{:.1}M{:.1},{:.1}L{:.1},{:.1}\" stroke=\"{color}\" stroke-width=\"2\"><title>{}</title></path>",
            cx - s, cy - s, cx + s, cy + s, cx - s, cy + s, cx + s, cy - s, esc(title)
        );
        self.marks += 1;
    }

    /// A polyline through data points.
    pub fn line(&mut self, pts: &[(f64, f64)], color: &str, width: f64, dash: bool, title: &str) {
        if pts.is_empty() {
            return;
        }
        let mut d = String::new();
        for (i, &(x, y)) in pts.iter().enumerate() {
            let _ = write!(
                d,
                "{}{:.1},{:.1}",
                if i == 0 { "M" } else { "L" },
                self.px(x),
                self.py(y)
            );
        }
        let dash = if dash {
            " stroke-dasharray=\"5,3\""
        } else {
            ""
        };
        let _ = write!(
            self.body,
            "<path class=\"mark\" d=\"{d}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"{width}\"{dash}><title>{}</title></path>",
            esc(title)
        );
        self.marks += 1;
    }

    /// A staircase through points sorted by x (each level held until the next x).
    pub fn steps(&mut self, pts: &[(f64, f64)], color: &str, width: f64, title: &str) {
        let mut st = Vec::with_capacity(pts.len() * 2);
        for (i, &(x, y)) in pts.iter().enumerate() {
            if i > 0 {
                st.push((x, pts[i - 1].1));
            }
            st.push((x, y));
        }
        self.line(&st, color, width, false, title);
    }

    /// Text at a data position.
    pub fn note(&mut self, x: f64, y: f64, text: &str) {
        let _ = write!(
            self.body,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" fill=\"#333\">{}</text>",
            self.px(x) + 5.0,
            self.py(y) - 5.0,
            esc(text)
        );
    }

    /// Adds a legend entry.
    pub fn legend(&mut self, label: &str, color: &str, marker: Marker) {
        self.legend
            .push((label.to_string(), color.to_string(), marker));
    }

    /// The finished `<svg>` element.
    pub fn finish(self) -> String {
        let (w, h) = (self.width, self.height);
        let (x0, x1) = (self.left, w - self.right);
        let (y0, y1) = (h - self.bottom, self.top);
        let mut s = String::new();
        let _ = write!(
            s,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"Helvetica,Arial,sans-serif\" data-marks=\"{}\">",
            self.marks
        );
        let _ = write!(
            s,
            "<rect x=\"0\" y=\"0\" width=\"{w}\" height=\"{h}\" fill=\"#fff\"/><text x=\"{:.1}\" y=\"20\" font-size=\"14\" text-anchor=\"middle\" font-weight=\"bold\">{}</text>",
            (x0 + x1) / 2.0,
            esc(&self.title)
        );
        for (v, label) in self.x.ticks() {
            let px = self.px(v);
            let _ = write!(
                s,
                "<line x1=\"{px:.1}\" y1=\"{y0}\" x2=\"{px:.1}\" y2=\"{y1}\" stroke=\"#eee\"/><line x1=\"{px:.1}\" y1=\"{y0}\" x2=\"{px:.1}\" y2=\"{:.1}\" stroke=\"#333\"/><text x=\"{px:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\">{}</text>",
                y0 + 5.0,
                y0 + 18.0,
                esc(&label)
            );
        }
        for (v, label) in self.y.ticks() {
            let py = self.py(v);
            let _ = write!(
                s,
                "<line x1=\"{x0}\" y1=\"{py:.1}\" x2=\"{x1}\" y2=\"{py:.1}\" stroke=\"#eee\"/><line x1=\"{:.1}\" y1=\"{py:.1}\" x2=\"{x0}\" y2=\"{py:.1}\" stroke=\"#333\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{}</text>",
                x0 - 5.0,
                x0 - 8.0,
                py + 4.0,
                esc(&label)
            );
        }
        let _ = write!(
            s,
            "<rect x=\"{x0}\" y=\"{y1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"none\" stroke=\"#333\"/>",
            x1 - x0,
            y0 - y1
        );
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"middle\">{}</text>",
            (x0 + x1) / 2.0,
            h - 12.0,
            esc(&self.x.label)
        );
        let _ = write!(
            s,
            "<text transform=\"translate(16,{:.1}) rotate(-90)\" font-size=\"12\" text-anchor=\"middle\">{}</text>",
            (y0 + y1) / 2.0,
            esc(&self.y.label)
        );
        let _ = write!(
            s,
            "<svg x=\"{x0}\" y=\"{y1}\" width=\"{:.1}\" height=\"{:.1}\" viewBox=\"{x0} {y1} {:.1} {:.1}\" overflow=\"hidden\">{}</svg>",
            x1 - x0,
            y0 - y1,
            x1 - x0,
            y0 - y1,
            self.body
        );
        for (i, (label, color, marker)) in self.legend.iter().enumerate() {
            let lx = x1 + 14.0;
            let ly = y1 + 10.0 + 18.0 * i as f64;
            match marker {
                Marker::Dot => {
                    let _ = write!(
                        s,
                        "<circle cx=\"{lx}\" cy=\"{ly}\" r=\"5\" fill=\"{color}\"/>"
                    );
                }
                Marker::Ring => {
                    let _ = write!(
                        s,
                        "<circle cx=\"{lx}\" cy=\"{ly}\" r=\"5\" fill=\"{color}\" stroke=\"#111\" stroke-width=\"2.2\"/>"
                    );
                }
                Marker::Cross => {
                    let _ = write!(
                        s,
                        "<path d=\"M{},{}L{},{}M{},{}L{},{}\" stroke=\"{color}\" stroke-width=\"2\"/>",
                        lx - 4.0,
                        ly - 4.0,
                        lx + 4.0,
                        ly + 4.0,
                        lx - 4.0,
                        ly + 4.0,
                        lx + 4.0,
                        ly - 4.0
                    );
                }
                Marker::Line => {
                    let _ = write!(
                        s,
                        "<line x1=\"{}\" y1=\"{ly}\" x2=\"{}\" y2=\"{ly}\" stroke=\"{color}\" stroke-width=\"2.5\"/>",
                        lx - 7.0,
                        lx + 7.0
                    );
                }
            }
            let _ = write!(
                s,
                "<text x=\"{}\" y=\"{}\" font-size=\"11\">{}</text>",
                lx + 12.0,
                ly + 4.0,
                esc(label)
            );
        }
        s.push_str("</svg>");
        s
    }
}

/// An SVG with a single centred message (a figure that has no data yet).
pub fn message(width: f64, height: f64, title: &str, text: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"Helvetica,Arial,sans-serif\" data-marks=\"0\"><rect width=\"{width}\" height=\"{height}\" fill=\"#fafafa\" stroke=\"#ccc\"/><text x=\"{:.1}\" y=\"24\" font-size=\"14\" text-anchor=\"middle\" font-weight=\"bold\">{}</text><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"13\" text-anchor=\"middle\" fill=\"#666\">{}</text></svg>",
        width / 2.0,
        esc(title),
        width / 2.0,
        height / 2.0,
        esc(text)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_cover_the_range() {
        let a = Axis {
            label: "x".into(),
            min: 0.03,
            max: 0.91,
            log: false,
            integer: false,
        };
        let t = a.ticks();
        assert!(t.len() >= 4 && t.len() <= 11, "{t:?}");
        assert!(t.iter().all(|(v, _)| *v >= a.min && *v <= a.max));
        let l = Axis {
            label: "p".into(),
            min: 900.0,
            max: 2.0e6,
            log: true,
            integer: false,
        };
        let t = l.ticks();
        assert_eq!(t[0].1, "1000");
        assert!(t.iter().any(|(_, s)| s == "1M"));
    }

    #[test]
    fn colormap_ends() {
        assert_eq!(colormap(0.0), "#440154");
        assert_eq!(colormap(1.0), "#fde725");
        assert_eq!(colormap(f64::NAN), "#440154");
    }

    #[test]
    fn escapes() {
        assert_eq!(esc("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
    }
}
