//! A small L-BFGS minimiser with a backtracking (Armijo) line search, for the GP
//! hyperparameters (a handful of unconstrained log-parameters with analytic gradients).

/// Minimises `f` from `x0`; `f` returns the value and gradient, or `None` where it is not
/// defined (the line search backs off). Returns the best point found and its value.
pub(crate) fn minimize<F>(mut f: F, x0: Vec<f64>, max_iter: usize) -> Option<(Vec<f64>, f64)>
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
        let mut t = if dmax > 3.0 { 3.0 / dmax } else { 1.0 };
        let mut accepted = None;
        for _ in 0..30 {
            // Give up once the predicted decrease is below rounding (at the optimum the
            // Armijo test fails on noise alone).
            if -t * slope <= 1e-12 * fx.abs().max(1.0) {
                break;
            }
            let xn: Vec<f64> = (0..n).map(|i| x[i] + t * d[i]).collect();
            if let Some((fnew, gnew)) = f(&xn) {
                if fnew.is_finite() && fnew <= fx + 1e-4 * t * slope {
                    accepted = Some((xn, fnew, gnew));
                    break;
                }
            }
            t *= 0.5;
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
        let done = (fx - fnew).abs() <= 1e-10 * fx.abs().max(1.0) && it > 2;
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
        let (x, v) = super::minimize(f, vec![-1.2, 1.0], 500).unwrap();
        assert!(v < 1e-8, "{v} at {x:?}");
        assert!((x[0] - 1.0).abs() < 1e-3 && (x[1] - 1.0).abs() < 1e-3);
    }
}
