//! The space, its unit-cube encoding and the study file.

use nago_space::{DimKind, Domain, Generator, GraphModel, SimplexSpec, Space, Study};
use proptest::prelude::*;
use std::collections::BTreeMap;

fn study(space: &str) -> String {
    format!(
        r#"{{"schema": "nago.study/1", "name": "t", "seed": 3, "space": {space},
            "dataset": {{"name": "fashion-mnist"}},
            "objectives": [{{"metric": "val_error", "goal": "min"}}, {{"metric": "params", "goal": "min", "log": true}}],
            "budgets": {{"min": 1, "max": 8, "eta": 2}}}}"#
    )
}

fn extended() -> Space {
    let text = study(
        r#"{"top.model": {"choice": ["ws", "er", "ba"]}, "ops": {"simplex": ["conv3x3", "conv5x5", "avgpool3x3"]},
            "stage_ratios": {"simplex": "all"}, "mid.merge": {"simplex": "all"},
            "param_limit": {"log": [1e4, 1e6]}, "mid.p": {"fixed": 0.4}}"#,
    );
    Study::from_json(&text).unwrap().space
}

#[test]
fn default_space_is_the_papers_eight_dimensions() {
    let s = Space::default();
    let names: Vec<&str> = s.dims().iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        names,
        ["top.n", "top.k", "top.p", "mid.n", "mid.p", "bottom.n", "bottom.k", "bottom.p"]
    );
    assert_eq!(s.dims()[0].kind, DimKind::Int { levels: 8 });
    assert_eq!(s.dims()[3].kind, DimKind::Int { levels: 10 });
    assert_eq!(s.dims()[2].kind, DimKind::Real);
    let b = s.base();
    assert_eq!(
        (b.top.model, b.mid.model, b.bottom.model),
        (GraphModel::Ws, GraphModel::Er, GraphModel::Ws)
    );
    assert_eq!(b.channel_ratios, [1.0, 2.0, 4.0]);
    assert_eq!(b.param_limit, 4e6);
}

#[test]
fn integers_decode_to_every_level_equally() {
    let s = Space::default();
    let mut counts = BTreeMap::new();
    for i in 0..800 {
        let mut u = vec![0.5; 8];
        u[0] = (i as f64 + 0.5) / 800.0;
        *counts.entry(s.decode(&u).unwrap().top.n).or_insert(0) += 1;
    }
    assert_eq!(
        counts.keys().copied().collect::<Vec<_>>(),
        (3..=10).collect::<Vec<_>>()
    );
    assert!(counts.values().all(|&c| c == 100), "{counts:?}");
    // The cube's corners decode to the bounds.
    let lo = s.decode(&[0.0; 8]).unwrap();
    let hi = s.decode(&[1.0; 8]).unwrap();
    assert_eq!((lo.top.n, lo.mid.n, lo.top.k, lo.top.p), (3, 1, 2, 0.1));
    assert_eq!((hi.top.n, hi.mid.n, hi.top.k), (10, 10, 5));
    assert!((hi.top.p - 0.9).abs() < 1e-12);
}

#[test]
fn extended_dimensions() {
    let s = extended();
    let kinds: Vec<_> = s.dims().iter().map(|d| (d.name.clone(), d.kind)).collect();
    assert!(kinds
        .iter()
        .any(|(n, k)| n == "top.model=ba" && matches!(k, DimKind::OneHot { size: 3, .. })));
    assert!(kinds
        .iter()
        .any(|(n, k)| n == "ops.avgpool3x3" && matches!(k, DimKind::Simplex { size: 3, .. })));
    assert!(kinds.iter().any(|(n, _)| n == "param_limit"));
    assert!(
        !kinds.iter().any(|(n, _)| n == "mid.p"),
        "fixed values are not searched"
    );
    assert_eq!(s.base().mid.p, 0.4);
    let u: Vec<f64> = (0..s.n_dims()).map(|i| (i as f64 * 0.37).fract()).collect();
    let g = s.decode(&u).unwrap();
    assert!(g.ops.conv1x1 == 0.0 && g.ops.conv3x3 + g.ops.conv5x5 + g.ops.avgpool3x3 > 0.99);
    assert!((g.stage_ratios.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    assert!(g.param_limit >= 1e4 && g.param_limit <= 1e6);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]
    #[test]
    fn decode_encode_decode_is_stable(u in prop::collection::vec(0.0f64..=1.0, 32)) {
        let s = extended();
        let u = &u[..s.n_dims()];
        let g = s.decode(u).unwrap();
        let v = s.encode(&g).unwrap();
        prop_assert!(v.iter().all(|x| (0.0..=1.0).contains(x)));
        let g2 = s.decode(&v).unwrap();
        prop_assert_eq!(g.top.n, g2.top.n);
        prop_assert_eq!(g.top.model, g2.top.model);
        prop_assert_eq!(g.bottom.k, g2.bottom.k);
        prop_assert!((g.top.p - g2.top.p).abs() < 1e-12);
        prop_assert!((g.param_limit - g2.param_limit).abs() / g.param_limit < 1e-9);
        for (a, b) in g.ops.to_array().iter().zip(g2.ops.to_array()) {
            prop_assert!((a - b).abs() < 1e-12);
        }
        // Snapping is idempotent.
        let v2 = s.encode(&g2).unwrap();
        prop_assert!(v.iter().zip(&v2).all(|(a, b)| (a - b).abs() < 1e-12), "{v:?} vs {v2:?}");
    }
}

#[test]
fn decode_rejects_nan_and_wrong_length() {
    let s = Space::default();
    let mut u = vec![0.5; 8];
    u[4] = f64::NAN;
    assert!(s
        .decode(&u)
        .unwrap_err()
        .to_string()
        .contains("point.mid.p"));
    assert!(s.decode(&[0.5; 3]).is_err());
}

#[test]
fn encode_rejects_generators_outside_the_space() {
    let s = Space::default();
    let mut g = *s.base();
    g.top.n = 12;
    assert!(s.encode(&g).unwrap_err().to_string().contains("top.n"));
    let mut g = *s.base();
    g.top.model = GraphModel::Ba;
    assert!(s.encode(&g).unwrap_err().to_string().contains("top.model"));
    let mut g = *s.base();
    g.top.p = f64::NAN;
    assert!(s.encode(&g).is_err());
}

#[test]
fn study_errors_name_the_field() {
    let cases = [
        (
            study(r#"{"top.q": {"int": [1, 2]}}"#),
            "unknown key `top.q`",
        ),
        (study(r#"{"top.n": {"int": [5, 2]}}"#), "space.top.n.int"),
        (study(r#"{"top.n": {"real": [1, 2]}}"#), "space.top.n"),
        (
            study(r#"{"top.p": {"real": [0.1, 1.5]}}"#),
            "space.top.p.real",
        ),
        (
            study(r#"{"top.model": {"choice": ["ws", "xx"]}}"#),
            "unknown key `xx`",
        ),
        (
            study(r#"{"ops": {"simplex": ["conv3x3", "conv7x7"]}}"#),
            "conv7x7",
        ),
        (
            study(r#"{"ops": {"fixed": {"conv3x3": 0}}}"#),
            "all weights are 0",
        ),
        (study(r#"{"top.n": {"between": [1, 2]}}"#), "space"),
        (study("{}").replace("\"seed\": 3", "\"seed\": -3"), "seed"),
        (
            study("{}").replace("\"name\": \"t\",", "\"name\": \"t\", \"colour\": 1,"),
            "unknown field `colour`",
        ),
        (
            study("{}").replace("nago.study/1", "nago.study/0"),
            "expected \"nago.study/1\"",
        ),
        (
            study("{}").replace("\"min\": 1, \"max\": 8", "\"min\": 9, \"max\": 8"),
            "budgets",
        ),
        (
            study("{}").replace("fashion-mnist\"}", "mine\"}"),
            "dataset.channels",
        ),
    ];
    for (text, expect) in cases {
        let err = Study::from_json(&text).unwrap_err().to_string();
        assert!(err.contains(expect), "expected `{expect}` in `{err}`");
    }
}

#[test]
fn study_round_trips_through_json() {
    let s = Study::from_json(&study(
        r#"{"top.model": {"choice": ["ws", "ba"]}, "param_limit": {"log": [1e4, 1e6]}}"#,
    ))
    .unwrap();
    let text = serde_json::to_string_pretty(&s).unwrap();
    let again = Study::from_json(&text).unwrap();
    assert_eq!(s, again);
    assert_eq!(s.dataset.shape().unwrap(), (1, 28, 28, 10));
}

#[test]
fn flat_columns_are_fixed_whatever_the_space() {
    let a = Generator::default().flat();
    let b = extended()
        .decode(&vec![0.3; extended().n_dims()])
        .unwrap()
        .flat();
    let names = |v: &[(String, nago_space::FlatValue)]| {
        v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>()
    };
    assert_eq!(names(&a), names(&b));
    assert!(names(&a).contains(&"op_avgpool5x5".to_string()));
}

#[test]
fn simplex_domain_forms() {
    let mut o = BTreeMap::new();
    o.insert(
        "stage_ratios".to_string(),
        Domain::Simplex(SimplexSpec::All("some".into())),
    );
    assert!(Space::from_overrides(&o).is_err());
    o.insert(
        "stage_ratios".to_string(),
        Domain::Simplex(SimplexSpec::Labels(vec!["0".into()])),
    );
    assert!(Space::from_overrides(&o)
        .unwrap_err()
        .to_string()
        .contains("at least two"));
}

#[test]
fn the_presets_parse() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines/presets");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "json") {
            let text = std::fs::read_to_string(&p).unwrap();
            Study::from_json(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            n += 1;
        }
    }
    assert!(n >= 4, "quick, standard, paper and smoke presets");
}

/// A study with one field of the smoke preset changed by `edit` (a JSON-pointer-like path).
fn edited(path: &[&str], value: serde_json::Value) -> String {
    let mut doc: serde_json::Value = serde_json::from_str(&study("{}")).unwrap();
    doc["training"] = serde_json::json!({});
    doc["search"] = serde_json::json!({});
    let mut cur = &mut doc;
    for p in &path[..path.len() - 1] {
        cur = match p.parse::<usize>() {
            Ok(i) => &mut cur[i],
            Err(_) => &mut cur[*p],
        };
    }
    cur[path[path.len() - 1]] = value;
    doc.to_string()
}

fn load_err(path: &[&str], value: serde_json::Value) -> String {
    match Study::from_json(&edited(path, value.clone())) {
        Ok(_) => panic!("{path:?} = {value} was accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_typo_in_a_metric_name_is_an_error_naming_the_field_and_the_valid_names() {
    let e = load_err(&["objectives", "0", "metric"], "val_eror".into());
    assert!(
        e.contains("objectives[0].metric") && e.contains("val_eror"),
        "{e}"
    );
    assert!(
        e.contains("val_error") && e.contains("params") && e.contains("extra_metrics"),
        "{e}"
    );
    let mut doc: serde_json::Value = serde_json::from_str(&study("{}")).unwrap();
    doc["constraints"] = serde_json::json!([{"metric": "parmas", "max": 1e5}]);
    let e = Study::from_json(&doc.to_string()).unwrap_err().to_string();
    assert!(
        e.contains("constraints[0].metric") && e.contains("parmas"),
        "{e}"
    );
    // A metric of the user's own trainer is fine once declared, and listed when misspelt.
    doc["constraints"] = serde_json::json!([{"metric": "energy_mj", "max": 5.0}]);
    assert!(Study::from_json(&doc.to_string()).is_err());
    doc["extra_metrics"] = serde_json::json!(["energy_mj"]);
    Study::from_json(&doc.to_string()).unwrap();
    doc["constraints"] = serde_json::json!([{"metric": "enrgy_mj", "max": 5.0}]);
    let e = Study::from_json(&doc.to_string()).unwrap_err().to_string();
    assert!(e.contains("energy_mj"), "{e}");
    // nago-train's latency is a known metric: no declaration needed.
    doc["extra_metrics"] = serde_json::json!([]);
    doc["constraints"] = serde_json::json!([{"metric": "latency_ms", "max": 5.0}]);
    Study::from_json(&doc.to_string()).unwrap();
}

#[test]
fn numeric_fields_are_range_checked_at_load_with_the_field_named() {
    let cases: Vec<(&[&str], serde_json::Value, &str)> = vec![
        (&["dataset", "validation"], 0.into(), "dataset.validation"),
        (
            &["dataset", "validation"],
            60000.into(),
            "dataset.validation",
        ),
        (
            &["dataset", "name"],
            "fashion_mnist".into(),
            "fashion_mnist",
        ),
        (&["budgets", "min"], 0.5.into(), "budgets.min"),
        (&["budgets", "max"], 2.5.into(), "budgets.max"),
        (&["budgets", "min"], 0.into(), "budgets.min"),
        (&["budgets", "eta"], 1.into(), "budgets.eta"),
        (
            &["training", "train_subset"],
            0.into(),
            "training.train_subset",
        ),
        (
            &["training", "train_subset"],
            58000.into(),
            "training.train_subset",
        ),
        (&["training", "lr"], 0.into(), "training.lr"),
        (&["training", "lr"], (-1.0).into(), "training.lr"),
        (&["training", "momentum"], 1.0.into(), "training.momentum"),
        (
            &["training", "label_smoothing"],
            1.5.into(),
            "training.label_smoothing",
        ),
        (
            &["training", "weight_decay"],
            (-0.1).into(),
            "training.weight_decay",
        ),
        (&["training", "batch_size"], 0.into(), "training.batch_size"),
        (
            &["search", "batch_size"],
            100000.into(),
            "search.batch_size",
        ),
        (&["search", "batch_size"], 0.into(), "search.batch_size"),
        (
            &["search", "initial_design"],
            100000.into(),
            "search.initial_design",
        ),
        (
            &["search", "max_evaluations"],
            0.into(),
            "search.max_evaluations",
        ),
        (
            &["search", "final_samples"],
            0.into(),
            "search.final_samples",
        ),
    ];
    for (path, v, field) in cases {
        let e = load_err(path, v.clone());
        assert!(e.contains(field), "{path:?} = {v}: {e}");
    }
    // The edges that are fine.
    for (path, v) in [
        (&["dataset", "validation"][..], serde_json::json!(59999)),
        (&["training", "train_subset"][..], serde_json::json!(1)),
        (&["budgets", "max"][..], serde_json::json!(120)),
        (&["search", "batch_size"][..], serde_json::json!(65536)),
    ] {
        Study::from_json(&edited(path, v.clone())).unwrap_or_else(|e| panic!("{path:?}={v}: {e}"));
    }
}

#[test]
fn missing_components_of_a_given_distribution_are_zero() {
    let level = |merge: &str| format!(r#"{{"model": "ws", "n": 5, "k": 4, "p": 0.2{merge}}}"#);
    let doc = |ops: &str, merge: &str| {
        format!(
            r#"{{"top": {}, "mid": {}, "bottom": {}{ops}}}"#,
            level(merge),
            level(""),
            level("")
        )
    };
    // Given by hand: what is left out is 0.
    let g = Generator::from_json(&doc(
        r#", "ops": {"avgpool3x3": 1}"#,
        r#", "merge": {"concat": 2}"#,
    ))
    .unwrap();
    assert_eq!(g.ops.to_array(), [0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
    assert_eq!(g.top.merge.to_array(), [0.0, 0.0, 2.0]);
    // Wholly absent: the paper's defaults (conv3x3 only, sum only).
    assert_eq!(g.mid.merge.to_array(), [1.0, 0.0, 0.0]);
    let g = Generator::from_json(&doc("", "")).unwrap();
    assert_eq!(g.ops.to_array(), [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    // An empty distribution is all 0: an error naming the field.
    let e = Generator::from_json(&doc(r#", "ops": {}"#, ""))
        .unwrap_err()
        .to_string();
    assert!(e.contains("ops"), "{e}");
}

#[test]
fn folder_datasets_take_their_shape_from_image_size_and_are_checked() {
    let with = |dataset: &str| study("{}").replace(r#"{"name": "fashion-mnist"}"#, dataset);
    let s = Study::from_json(&with(
        r#"{"name": "folder", "path": "/d", "channels": 3, "image_size": 96, "classes": 5}"#,
    ))
    .unwrap();
    assert_eq!(s.dataset.shape().unwrap(), (3, 96, 96, 5));
    let cases = [
        // image_size is the folder reader's; the other formats have one size.
        (
            r#"{"name": "cifar10", "image_size": 32}"#,
            "dataset.image_size",
        ),
        (
            r#"{"name": "folder", "channels": 1, "image_size": 2, "classes": 2}"#,
            "dataset.image_size",
        ),
        (
            r#"{"name": "folder", "channels": 1, "image_size": 64, "height": 32, "classes": 2}"#,
            "dataset.height",
        ),
        (
            r#"{"name": "folder", "channels": 4, "image_size": 64, "classes": 2}"#,
            "dataset.channels",
        ),
        // Without image_size the shape must be given.
        (
            r#"{"name": "folder", "channels": 1, "classes": 2}"#,
            "dataset.height",
        ),
    ];
    for (d, expect) in cases {
        let e = Study::from_json(&with(d)).unwrap_err().to_string();
        assert!(e.contains(expect), "{d}: expected `{expect}` in `{e}`");
    }
}

#[test]
fn the_head_width_is_fixed_or_searched_and_reaches_the_sampled_generator() {
    // Default: the paper's 1280, not searched, and not written into generator files.
    let s = Space::default();
    assert_eq!(s.base().head_channels, 1280);
    let json = serde_json::to_string(s.base()).unwrap();
    assert!(!json.contains("head_channels"), "{json}");

    let fixed = Study::from_json(&study(r#"{"head_channels": {"fixed": 96}}"#)).unwrap();
    assert_eq!(fixed.space.base().head_channels, 96);
    assert_eq!(fixed.space.n_dims(), 8);
    let g = fixed.space.decode(&[0.5; 8]).unwrap();
    assert_eq!(g.head_channels, 96);
    let json = serde_json::to_string(&g).unwrap();
    assert!(json.contains("\"head_channels\":96"), "{json}");
    let back: Generator = serde_json::from_str(&json).unwrap();
    assert_eq!(back, g);
    assert!(fixed.space.contains(&g));
    let mut other = g;
    other.head_channels = 128;
    assert!(
        !fixed.space.contains(&other),
        "a fixed head width is part of the space"
    );

    let searched = Study::from_json(&study(r#"{"head_channels": {"int": [32, 159]}}"#)).unwrap();
    let dims = searched.space.dims();
    assert_eq!(dims.len(), 9);
    assert_eq!(dims[8].name, "head_channels");
    assert_eq!(dims[8].kind, DimKind::Int { levels: 128 });
    let mut u = vec![0.5; 9];
    u[8] = 0.0;
    assert_eq!(searched.space.decode(&u).unwrap().head_channels, 32);
    u[8] = 1.0;
    let g = searched.space.decode(&u).unwrap();
    assert_eq!(g.head_channels, 159);
    assert_eq!(
        searched
            .space
            .decode(&searched.space.encode(&g).unwrap())
            .unwrap(),
        g
    );
    let flat = g.flat();
    assert!(
        flat.iter()
            .any(|(n, v)| n == "head_channels" && *v == nago_space::FlatValue::Int(159)),
        "{flat:?}"
    );

    for (bad, field) in [
        (
            r#"{"head_channels": {"int": [0, 64]}}"#,
            "space.head_channels.int",
        ),
        (
            r#"{"head_channels": {"int": [64, 100000]}}"#,
            "space.head_channels.int",
        ),
        (r#"{"head_channels": {"fixed": 0}}"#, "head_channels"),
        (
            r#"{"head_channels": {"fixed": "wide"}}"#,
            "space.head_channels.fixed",
        ),
        (
            r#"{"head_channels": {"real": [1, 2]}}"#,
            "space.head_channels",
        ),
    ] {
        let e = Study::from_json(&study(bad)).unwrap_err().to_string();
        assert!(e.contains(field), "{bad}: {e}");
    }
}

/// The head's dropout: 0.2 by default and then not written (files of the default head keep
/// their bytes); fixed or searched on a linear scale in [0, 0.9]; out-of-range values are
/// refused with the field.
#[test]
fn the_head_dropout_is_fixed_or_searched_and_reaches_the_sampled_generator() {
    let s = Space::default();
    assert_eq!(s.base().head_dropout, 0.2);
    let json = serde_json::to_string(s.base()).unwrap();
    assert!(!json.contains("head_dropout"), "{json}");

    let fixed = Study::from_json(&study(r#"{"head_dropout": {"fixed": 0.0}}"#)).unwrap();
    assert_eq!(fixed.space.n_dims(), 8);
    let g = fixed.space.decode(&[0.5; 8]).unwrap();
    assert_eq!(g.head_dropout, 0.0);
    let json = serde_json::to_string(&g).unwrap();
    assert!(json.contains("\"head_dropout\":0.0"), "{json}");
    let back: Generator = serde_json::from_str(&json).unwrap();
    assert_eq!(back, g);
    assert!(fixed.space.contains(&g));
    let mut other = g;
    other.head_dropout = 0.2;
    assert!(
        !fixed.space.contains(&other),
        "a fixed dropout is part of the space"
    );

    let searched = Study::from_json(&study(r#"{"head_dropout": {"real": [0.0, 0.5]}}"#)).unwrap();
    let dims = searched.space.dims();
    assert_eq!(dims.len(), 9);
    assert_eq!(dims[8].name, "head_dropout");
    let mut u = vec![0.5; 9];
    u[8] = 0.0;
    assert_eq!(searched.space.decode(&u).unwrap().head_dropout, 0.0);
    u[8] = 0.5;
    let g = searched.space.decode(&u).unwrap();
    assert!((g.head_dropout - 0.25).abs() < 1e-12, "{}", g.head_dropout);
    assert_eq!(
        searched
            .space
            .decode(&searched.space.encode(&g).unwrap())
            .unwrap(),
        g
    );
    assert_eq!(
        g.flat().last().unwrap(),
        &(
            "head_dropout".to_string(),
            nago_space::FlatValue::Real(g.head_dropout)
        )
    );

    for (bad, field) in [
        (
            r#"{"head_dropout": {"real": [0.0, 1.0]}}"#,
            "space.head_dropout.real",
        ),
        (
            r#"{"head_dropout": {"real": [-0.1, 0.5]}}"#,
            "space.head_dropout.real",
        ),
        (r#"{"head_dropout": {"fixed": 0.95}}"#, "head_dropout"),
        (
            r#"{"head_dropout": {"fixed": "none"}}"#,
            "space.head_dropout.fixed",
        ),
        (r#"{"head_dropout": {"int": [0, 1]}}"#, "space.head_dropout"),
        (
            r#"{"head_dropout": {"log": [0.1, 0.5]}}"#,
            "space.head_dropout",
        ),
    ] {
        let e = Study::from_json(&study(bad)).unwrap_err().to_string();
        assert!(e.contains(field), "{bad}: {e}");
    }
    // A generator file with a dropout out of range names the field.
    let e = Generator::from_json(
        r#"{"top": {"model": "ws", "n": 3, "k": 2, "p": 0.4},
            "mid": {"model": "er", "n": 1, "k": 2, "p": 0.4},
            "bottom": {"model": "ws", "n": 3, "k": 2, "p": 0.4}, "head_dropout": 1.0}"#,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("head_dropout"), "{e}");
}

/// `final.param_limit: "largest"` widens the final networks up to the constraints, so a study
/// without a size constraint is refused (naming the field); with one it loads, and an
/// unknown rule names the known ones.
#[test]
fn largest_final_width_needs_a_size_constraint() {
    let final_largest = serde_json::json!({"param_limit": "largest"});
    let e = load_err(&["final"], final_largest.clone());
    assert!(
        e.contains("final.param_limit") && e.contains("no constraint bounds its size"),
        "{e}"
    );
    // A minimum only, or a maximum on a metric that does not grow with width: still refused.
    let mut doc: serde_json::Value =
        serde_json::from_str(&edited(&["final"], final_largest)).unwrap();
    doc["constraints"] = serde_json::json!([{"metric": "min_channels", "min": 4},
                                            {"metric": "val_error", "max": 0.5}]);
    let e = Study::from_json(&doc.to_string()).unwrap_err().to_string();
    assert!(e.contains("final.param_limit"), "{e}");
    for metric in ["params", "macs", "memory_mb", "activation_mb"] {
        doc["constraints"] = serde_json::json!([{"metric": metric, "max": 1e5}]);
        let s = Study::from_json(&doc.to_string()).unwrap_or_else(|e| panic!("{metric}: {e}"));
        assert_eq!(s.final_round.param_limit, nago_space::FinalWidth::Largest);
    }
    let e = load_err(&["final"], serde_json::json!({"param_limit": "widest"}));
    assert!(e.contains("searched") && e.contains("largest"), "{e}");
    // The default is the searched width.
    let s = Study::from_json(&study("{}")).unwrap();
    assert_eq!(s.final_round.param_limit, nago_space::FinalWidth::Searched);
}

/// `search.param_limit: "largest"` trains every search trial as wide as the constraints allow:
/// it needs a size constraint and a space that fixes `param_limit` (the width it starts from),
/// and the model's point of a widened generator is that fixed width again.
#[test]
fn largest_search_width_needs_a_fixed_width_and_a_size_constraint() {
    let doc = |space: serde_json::Value, constraints: serde_json::Value| {
        let mut d: serde_json::Value = serde_json::from_str(&study("{}")).unwrap();
        d["space"] = space;
        d["constraints"] = constraints;
        d["search"] = serde_json::json!({"param_limit": "largest"});
        d.to_string()
    };
    let bound = serde_json::json!([{"metric": "params", "max": 1e5}]);
    let fixed = serde_json::json!({"param_limit": {"fixed": 20000}});
    let searched = serde_json::json!({"param_limit": {"log": [2e4, 1e5]}});
    let e = Study::from_json(&doc(searched, bound.clone()))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("search.param_limit") && e.contains("fix it in the space"),
        "{e}"
    );
    let e = Study::from_json(&doc(fixed.clone(), serde_json::json!([])))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("search.param_limit") && e.contains("no constraint bounds its size"),
        "{e}"
    );
    let s = Study::from_json(&doc(fixed, bound)).unwrap();
    assert_eq!(s.search.param_limit, nago_space::FinalWidth::Largest);
    assert_eq!(
        Study::from_json(&serde_json::to_string(&s).unwrap()).unwrap(),
        s
    );
    let wide = Generator {
        param_limit: 87_654.0,
        ..*s.space.base()
    };
    assert_eq!(s.search_point(&wide).param_limit, 20_000.0);
    assert!(s.space.encode(&wide).is_err());
    assert!(s.space.encode(&s.search_point(&wide)).is_ok());
    // The default: the generator's own width, which the model sees as it is.
    let d = Study::from_json(&study(r#"{"param_limit": {"log": [2e4, 1e5]}}"#)).unwrap();
    assert_eq!(d.search.param_limit, nago_space::FinalWidth::Searched);
    assert_eq!(d.search_point(&wide), wide);
    let text = serde_json::to_string(&d.search).unwrap();
    assert!(!text.contains("param_limit"), "{text}");
    assert!(serde_json::to_string(&s.search)
        .unwrap()
        .contains(r#""param_limit":"largest""#));
}
