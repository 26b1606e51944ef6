//! A small L-BFGS minimiser with a backtracking (Armijo) line search, for the GP
//! hyperparameters (a handful of unconstrained log-parameters with analytic gradients).

/// Largest first trial step (in any coordinate) of a polish.
pub(crate) const POLISH_FIRST_STEP: f64 = 0.01;
/// A polish stops once an iteration improves the value by less than this, relative
/// (1e-6 of a log likelihood of −2800 is 0.003 nats: no visible change of the model).
pub(crate) const POLISH_FTOL: f64 = 1e-6;

/// Minimises `f` from `x0`; `f` returns the value and gradient, or `None` where it is not
/// defined (the line search backs off). Returns the best point found and its value.
///
/// `polish`: `x0` is known to be near the optimum (the previous fit's hyperparameters, a few
/// observations ago), and a cheap polish is wanted: the first trial step moves no
/// coordinate by more than [`POLISH_FIRST_STEP`] (a unit step from there overshoots), the
/// backtracking interpolates (a safeguarded quadratic instead of halving), and it stops at
/// the first iteration that gains less than [`POLISH_FTOL`] relative. Otherwise a plain
/// search from a guess.
pub(crate) fn minimize<F>(
    mut f: F,
    x0: Vec<f64>,
    max_iter: usize,
    polish: bool,
) -> Option<(Vec<f64>, f64)>
where
    F: FnMut(&[f64]) -> Option<(f64, Vec<f64>)>,
{
    let m = 7;
    let n = x0.len();
    let (mut fx, mut g) = f(&x0)?;
    let mut x = x0;
    let mut s_hist: Vec<Vec<f64>> = Vec::new();
    let mut y_hist: Vec<Vec<f64>> = Vec::new();
    for it in 0..max_iter {
        let gnorm = g.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        if gnorm < 1e-6 {
            break;
        }
        // Two-loop recursion: d = -H g.
        let mut q = g.clone();
        let k = s_hist.len();
        let mut alpha = vec![0.0; k];
        for i in (0..k).rev() {
            let rho = 1.0 / dot(&y_hist[i], &s_hist[i]);
            alpha[i] = rho * dot(&s_hist[i], &q);
            axpy(-alpha[i], &y_hist[i], &mut q);
        }
        let gamma = if k > 0 {
            dot(&s_hist[k - 1], &y_hist[k - 1]) / dot(&y_hist[k - 1], &y_hist[k - 1])
        } else {
            1.0 / gnorm.max(1.0)
        };
        for v in q.iter_mut() {
            *v *= gamma;
        }
        for i in 0..k {
            let rho = 1.0 / dot(&y_hist[i], &s_hist[i]);
            let beta = rho * dot(&y_hist[i], &q);
            axpy(alpha[i] - beta, &s_hist[i], &mut q);
        }
        let mut d: Vec<f64> = q.iter().map(|v| -v).collect();
        let mut slope = dot(&g, &d);
        if slope >= 0.0 {
            // Not a descent direction: restart from steepest descent.
            s_hist.clear();
            y_hist.clear();
            d = g.iter().map(|v| -v / gnorm.max(1.0)).collect();
            slope = dot(&g, &d);
        }
        // Cap the step so one iteration never moves a log-parameter by more than 3.
        let dmax = d.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        let cap = if polish && it == 0 {
            POLISH_FIRST_STEP
        } else {
            3.0
        };
        let mut t = if dmax > cap { cap / dmax } else { 1.0 };
        let mut accepted = None;
        for _ in 0..30 {
            // Give up once the predicted decrease is below rounding (at the optimum the
            // Armijo test fails on noise alone).
            if -t * slope <= 1e-12 * fx.abs().max(1.0) {
                break;
            }
            let xn: Vec<f64> = (0..n).map(|i| x[i] + t * d[i]).collect();
            let got = f(&xn);
            if let Some((fnew, gnew)) = got.as_ref() {
                if fnew.is_finite() && *fnew <= fx + 1e-4 * t * slope {
                    accepted = Some((xn, *fnew, gnew.clone()));
                    break;
                }
            }
            t = match got {
                // The minimiser of the quadratic through f(x), its slope and f(x + t d),
                // kept within [0.1 t, 0.5 t].
                Some((fnew, _)) if polish && fnew.is_finite() => {
                    let q = -slope * t * t / (2.0 * (fnew - fx - slope * t));
                    q.clamp(0.1 * t, 0.5 * t)
                }
                _ => t * 0.5,
            };
        }
        let Some((xn, fnew, gnew)) = accepted else {
            break;
        };
        let s: Vec<f64> = (0..n).map(|i| xn[i] - x[i]).collect();
        let yv: Vec<f64> = (0..n).map(|i| gnew[i] - g[i]).collect();
        if dot(&s, &yv) > 1e-12 {
            if s_hist.len() == m {
                s_hist.remove(0);
                y_hist.remove(0);
            }
            s_hist.push(s);
            y_hist.push(yv);
        }
        let done = if polish {
            (fx - fnew).abs() <= POLISH_FTOL * fx.abs().max(1.0)
        } else {
            (fx - fnew).abs() <= 1e-10 * fx.abs().max(1.0) && it > 2
        };
        x = xn;
        fx = fnew;
        g = gnew;
        if done {
            break;
        }
    }
    Some((x, fx))
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn axpy(a: f64, x: &[f64], y: &mut [f64]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rosenbrock() {
        let f = |x: &[f64]| {
            let (a, b) = (x[0], x[1]);
            let v = (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2);
            let g = vec![
                -2.0 * (1.0 - a) - 400.0 * a * (b - a * a),
                200.0 * (b - a * a),
            ];
            Some((v, g))
        };
        let (x, v) = super::minimize(f, vec![-1.2, 1.0], 500, false).unwrap();
        assert!(v < 1e-8, "{v} at {x:?}");
        assert!((x[0] - 1.0).abs() < 1e-3 && (x[1] - 1.0).abs() < 1e-3);
    }

    #[test]
    fn polish_from_near_the_optimum_is_cheap() {
        // A stiff quadratic (curvature 1000, like a likelihood of many points) started 0.325
        // above its minimum: the polish gets within 0.01 of it in a few evaluations (it stops
        // once an iteration gains under POLISH_FTOL · 2800 = 0.0028).
        let evals = std::cell::Cell::new(0);
        let f = |x: &[f64]| {
            evals.set(evals.get() + 1);
            let v = 500.0 * (x[0] - 1.0).powi(2) + 50.0 * (x[1] + 2.0).powi(2) - 2800.0;
            Some((v, vec![1000.0 * (x[0] - 1.0), 100.0 * (x[1] + 2.0)]))
        };
        let (_, v) = super::minimize(f, vec![1.02, -2.05], 12, true).unwrap();
        assert!(v < -2800.0 + 1e-2, "{v}");
        assert!(evals.get() <= 8, "{} evaluations", evals.get());
    }
}
