//! nago-ask end to end: byte-identical responses, a warm-started run through state_dir equal
//! to the library's chain, bad requests naming their field, and the study's seed derivation.

use nago_bo::ask::{parse_request, Request};
use nago_bo::defaults::{fit_options, initial_design_size, propose_options, sobol_seed};
use nago_bo::engine::{fit, propose, Observation, Surrogate};
use nago_bo::MixedCube;
use std::path::Path;
use std::process::Command;

fn zdt1(x: &[f64]) -> Vec<f64> {
    let g = 1.0 + 9.0 * x[1..].iter().sum::<f64>() / (x.len() - 1) as f64;
    vec![x[0], g * (1.0 - (x[0] / g).sqrt())]
}

fn request(n: usize, ask_index: u64, state: Option<&Path>) -> serde_json::Value {
    let xs = nago_bo::design::sobol(0, n, 3, 42).unwrap();
    let ys: Vec<Vec<f64>> = xs.iter().map(|x| zdt1(x)).collect();
    let mut r = serde_json::json!({
        "protocol": "mo-bench/1",
        "problem": {"name": "ZDT1", "dim": 3, "num_objectives": 2, "ref_point": [11.0, 11.0],
                    "levels": [null, null, 5], "noisy": false},
        "seed": 7, "q": 4, "budget": 40, "ask_index": ask_index,
        "history": {"X": xs, "Y": ys}
    });
    if let Some(s) = state {
        r["state_dir"] = serde_json::json!(s.to_str().unwrap());
    }
    r
}

fn run_ask(dir: &Path, req: &serde_json::Value, tag: &str) -> (i32, Vec<u8>, String) {
    let rq = dir.join(format!("req-{tag}.json"));
    let rs = dir.join(format!("resp-{tag}.json"));
    std::fs::write(&rq, serde_json::to_vec_pretty(req).unwrap()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_nago-ask"))
        .arg(&rq)
        .arg(&rs)
        .output()
        .unwrap();
    let bytes = std::fs::read(&rs).unwrap_or_default();
    (
        out.status.code().unwrap_or(-1),
        bytes,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn identical_requests_give_identical_bytes() {
    let dir = tempfile::tempdir().unwrap();
    for n in [0, 4, 20] {
        let req = request(n, 3, None);
        let (c1, a, e1) = run_ask(dir.path(), &req, "a");
        let (c2, b, _) = run_ask(dir.path(), &req, "b");
        assert_eq!((c1, c2), (0, 0), "{e1}");
        assert_eq!(a, b);
        let v: serde_json::Value = serde_json::from_slice(&a).unwrap();
        let rows = v["X"].as_array().unwrap();
        assert_eq!(rows.len(), 4);
        for r in rows {
            let r: Vec<f64> = serde_json::from_value(r.clone()).unwrap();
            assert_eq!(r.len(), 3);
            assert!(r.iter().all(|v| (0.0..=1.0).contains(v)));
            // The 5-level input is on its grid.
            assert!(((r[2] * 4.0).round() - r[2] * 4.0).abs() < 1e-12, "{r:?}");
        }
    }
}

/// What the study's nago-update/nago-propose do with the shared defaults: Sobol until the
/// initial design size, then fit (warm from the previous surrogate) + propose.
fn study_round(req: &Request, prev: Option<&Surrogate>) -> (Vec<Vec<f64>>, Option<Surrogate>) {
    let snap = req.snap();
    let n = req.history.x.len();
    if n < initial_design_size(req.problem.dim, req.budget) {
        let mut pts =
            nago_bo::design::sobol(n, req.q, req.problem.dim, sobol_seed(req.seed)).unwrap();
        for p in pts.iter_mut() {
            nago_bo::Snap::snap(&snap, p);
        }
        return (pts, None);
    }
    let obs: Vec<Observation> = req
        .history
        .x
        .iter()
        .zip(&req.history.y)
        .map(|(x, y)| Observation {
            x: x.clone(),
            y: y.as_ref().map(|r| r.iter().map(|v| v.unwrap()).collect()),
            feasible: true,
        })
        .collect();
    let mut fo = fit_options(req.seed);
    let warm = prev.map(Surrogate::warm_start);
    fo.warm_start = warm.as_ref();
    let sur = fit(&obs, 2, &req.problem.ref_point, fo).unwrap();
    let pts = propose(
        &sur,
        &snap,
        &[],
        &[],
        req.q,
        propose_options(req.seed, req.ask_index),
    )
    .unwrap();
    (pts, Some(sur))
}

#[test]
fn a_run_through_state_dir_equals_the_study_chain() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let mut xs: Vec<Vec<f64>> = Vec::new();
    let mut prev: Option<Surrogate> = None;
    let mut k = 0u64;
    while xs.len() < 24 {
        let ys: Vec<Vec<f64>> = xs.iter().map(|x| zdt1(x)).collect();
        let req = serde_json::json!({
            "protocol": "mo-bench/1",
            "problem": {"dim": 3, "num_objectives": 2, "ref_point": [11.0, 11.0]},
            "seed": 3, "q": 4, "budget": 24, "ask_index": k,
            "state_dir": state.to_str().unwrap(),
            "history": {"X": xs, "Y": ys}
        });
        let (code, bytes, err) = run_ask(dir.path(), &req, &k.to_string());
        assert_eq!(code, 0, "{err}");
        let got: Vec<Vec<f64>> = serde_json::from_value(
            serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()["X"].clone(),
        )
        .unwrap();
        let r: Request = parse_request(&req.to_string()).unwrap();
        let (want, sur) = study_round(&r, prev.as_ref());
        assert_eq!(got, want, "ask {k}");
        if sur.is_some() {
            prev = sur;
        }
        // Asking again (same request, same state) gives the same bytes.
        let (_, again, _) = run_ask(dir.path(), &req, &format!("{k}-again"));
        assert_eq!(again, bytes);
        xs.extend(got);
        k += 1;
    }
    assert!(state.join("surrogate-5.json").exists());
}

#[test]
fn bad_fields_are_named() {
    let good = request(20, 0, None);
    assert!(parse_request(&good.to_string()).is_ok());
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(&str, Edit)> = vec![
        (
            "protocol",
            Box::new(|r| r["protocol"] = "mo-bench/2".into()),
        ),
        (
            "protocol",
            Box::new(|r| {
                r.as_object_mut().unwrap().remove("protocol");
            }),
        ),
        ("problem.dim", Box::new(|r| r["problem"]["dim"] = 0.into())),
        (
            "problem.dim",
            Box::new(|r| r["problem"]["dim"] = "3".into()),
        ),
        (
            "problem.num_objectives",
            Box::new(|r| r["problem"]["num_objectives"] = 4.into()),
        ),
        (
            "problem.ref_point",
            Box::new(|r| r["problem"]["ref_point"] = serde_json::json!([1.0])),
        ),
        (
            "problem.ref_point",
            Box::new(|r| r["problem"]["ref_point"] = serde_json::json!([1.0, "a"])),
        ),
        (
            "problem.levels",
            Box::new(|r| r["problem"]["levels"] = serde_json::json!([null])),
        ),
        (
            "problem.levels[2]",
            Box::new(|r| r["problem"]["levels"] = serde_json::json!([null, null, 1])),
        ),
        (
            "problem.noisy",
            Box::new(|r| r["problem"]["noisy"] = "yes".into()),
        ),
        (
            "problem.name",
            Box::new(|r| r["problem"]["name"] = 5.into()),
        ),
        (
            "problem",
            Box::new(|r| r["problem"]["colour"] = "red".into()),
        ),
        ("seed", Box::new(|r| r["seed"] = (-1).into())),
        ("q", Box::new(|r| r["q"] = 0.into())),
        ("budget", Box::new(|r| r["budget"] = 0.into())),
        ("ask_index", Box::new(|r| r["ask_index"] = 1.5.into())),
        ("state_dir", Box::new(|r| r["state_dir"] = "".into())),
        ("state_dir", Box::new(|r| r["state_dir"] = 3.into())),
        ("history.X", Box::new(|r| r["history"]["X"] = "none".into())),
        (
            "history.X[1]",
            Box::new(|r| r["history"]["X"][1] = serde_json::json!([0.5])),
        ),
        (
            "history.X[2][0]",
            Box::new(|r| r["history"]["X"][2][0] = 1.5.into()),
        ),
        (
            "history.Y",
            Box::new(|r| {
                r["history"]["Y"].as_array_mut().unwrap().pop();
            }),
        ),
        (
            "history.Y[3]",
            Box::new(|r| r["history"]["Y"][3] = serde_json::json!([1.0])),
        ),
        (
            "history",
            Box::new(|r| r["history"]["Z"] = serde_json::json!([])),
        ),
        ("extra", Box::new(|r| r["extra"] = 1.into())),
    ];
    for (field, f) in cases {
        let mut r = good.clone();
        f(&mut r);
        let e = parse_request(&r.to_string()).expect_err(field);
        assert!(
            e.field == field
                || e.field.starts_with(&format!("{field}."))
                || e.field.starts_with(&format!("{field}[")),
            "{field}: got {e}"
        );
        assert!(e.to_string().starts_with(&e.field));
    }
    // The binary: exit 2, the field named on stderr, no response written.
    let dir = tempfile::tempdir().unwrap();
    let mut r = good.clone();
    r["q"] = 0.into();
    let (code, bytes, err) = run_ask(dir.path(), &r, "bad");
    assert_eq!(code, 2);
    assert!(err.contains("q: must be at least 1"), "{err}");
    assert!(bytes.is_empty());
    // Not JSON at all.
    let rq = dir.path().join("junk.json");
    std::fs::write(&rq, "{").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_nago-ask"))
        .arg(&rq)
        .arg(dir.path().join("out.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn seeds_derive_as_in_the_study() {
    for base in [0u64, 7, u64::MAX] {
        for labels in [&["surrogate"][..], &["propose", "12"], &["sobol"]] {
            assert_eq!(
                nago_bo::defaults::derive_seed(base, labels),
                nago_store::derive_seed(base, labels)
            );
        }
    }
    let _ = MixedCube::reals(1);
}

/// A black box evaluated at the same points several times, with noise that differs between
/// regions: the fit takes each replicated point's noise from its replicates (heteroscedastic
/// noise, `nago_bo::noise`), and the answer is still deterministic.
#[test]
fn replicated_history_gets_per_point_noise() {
    let xs = nago_bo::design::sobol(0, 12, 3, 42).unwrap();
    let mut hx = Vec::new();
    let mut hy = Vec::new();
    let mut z = 11u64;
    for x in &xs {
        let sd = if x[0] < 0.5 { 0.01 } else { 0.3 };
        for _ in 0..3 {
            z = z.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let e = ((z >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * sd * 12f64.sqrt();
            let y = zdt1(x);
            hx.push(x.clone());
            hy.push(vec![y[0] + e, y[1] + e]);
        }
    }
    let req: serde_json::Value = serde_json::json!({
        "protocol": "mo-bench/1",
        "problem": {"name": "replicated", "dim": 3, "num_objectives": 2, "ref_point": [11.0, 11.0],
                    "levels": [null, null, null], "noisy": true},
        "seed": 3, "q": 4, "budget": 60, "ask_index": 2,
        "history": {"X": hx, "Y": hy}
    });
    let parsed: Request = parse_request(&req.to_string()).unwrap();
    let a = nago_bo::ask::ask(&parsed, None).unwrap();
    let sur = a
        .surrogate
        .expect("the model answers past the initial design");
    for g in &sur.objectives {
        assert_eq!(g.noise_scale.len(), hx.len());
        // Geometric mean of the scales in each region.
        let gmean = |quiet: bool| {
            let v: Vec<f64> = hx
                .iter()
                .zip(&g.noise_scale)
                .filter(|(x, _)| (x[0] < 0.5) == quiet)
                .map(|(_, s)| s.ln())
                .collect();
            (v.iter().sum::<f64>() / v.len() as f64).exp()
        };
        let (quiet, loud) = (gmean(true), gmean(false));
        assert!(loud > 10.0 * quiet, "quiet {quiet}, loud {loud}");
    }
    let dir = tempfile::tempdir().unwrap();
    let (c1, r1, e1) = run_ask(dir.path(), &req, "a");
    let (c2, r2, _) = run_ask(dir.path(), &req, "b");
    assert_eq!((c1, c2), (0, 0), "{e1}");
    assert_eq!(r1, r2);
}
