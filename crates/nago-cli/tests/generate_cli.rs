//! nago-generate as a person and an array task run it: outputs, idempotence, bad input.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

fn generate(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nago-generate"))
        .args(args)
        .current_dir(cwd)
        .env_remove("SLURM_ARRAY_TASK_ID")
        .output()
        .expect("nago-generate runs")
}

const GEN: &str = r#"{"schema": "nago.generator/1", "generator": {
  "top": {"model": "ws", "n": 6, "k": 4, "p": 0.5},
  "mid": {"model": "er", "n": 3, "k": 2, "p": 0.6},
  "bottom": {"model": "ws", "n": 5, "k": 2, "p": 0.3},
  "param_limit": 50000}}"#;

#[test]
fn by_hand_writes_valid_deterministic_artifacts() {
    let d = tempfile::tempdir().unwrap();
    fs::write(d.path().join("g.json"), GEN).unwrap();
    let o = generate(
        &["--proposal", "g.json", "--seed", "11", "--out", "a"],
        d.path(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = fs::read_to_string(d.path().join("a/arch.json")).unwrap();
    let arch = nago_arch::Arch::from_json(&text).unwrap();
    assert_eq!(arch.seed, 11);
    assert_eq!(arch.cells.len(), 6);
    let dot = fs::read_to_string(d.path().join("a/arch.dot")).unwrap();
    assert!(dot.starts_with("digraph"));
    assert_eq!(
        dot.lines()
            .filter(|l| l.starts_with("  subgraph cluster_c"))
            .count(),
        6,
        "one cluster per cell"
    );
    assert_eq!(
        dot.lines()
            .filter(|l| l.starts_with("    subgraph cluster_c"))
            .count(),
        18,
        "one per op-graph"
    );
    // Same inputs, byte-identical output in another directory.
    let o = generate(
        &["--proposal", "g.json", "--seed", "11", "--out", "b"],
        d.path(),
    );
    assert!(o.status.success());
    assert_eq!(
        text,
        fs::read_to_string(d.path().join("b/arch.json")).unwrap()
    );
    // Rerun on the same directory keeps the file; another seed is refused, --force replaces.
    let o = generate(
        &["--proposal", "g.json", "--seed", "11", "--out", "a"],
        d.path(),
    );
    assert!(o.status.success() && String::from_utf8_lossy(&o.stderr).contains("kept existing"));
    let o = generate(
        &["--proposal", "g.json", "--seed", "12", "--out", "a"],
        d.path(),
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--force"));
    assert_eq!(
        text,
        fs::read_to_string(d.path().join("a/arch.json")).unwrap()
    );
    let o = generate(
        &[
            "--proposal",
            "g.json",
            "--seed",
            "12",
            "--out",
            "a",
            "--force",
        ],
        d.path(),
    );
    assert!(o.status.success());
    assert_ne!(
        text,
        fs::read_to_string(d.path().join("a/arch.json")).unwrap()
    );
    // A corrupt arch.json is replaced, not trusted.
    fs::write(
        d.path().join("b/arch.json"),
        "{\"schema\": \"nago.arch/1\", \"cells\": [",
    )
    .unwrap();
    let o = generate(
        &["--proposal", "g.json", "--seed", "11", "--out", "b"],
        d.path(),
    );
    assert!(o.status.success());
    assert_eq!(
        text,
        fs::read_to_string(d.path().join("b/arch.json")).unwrap()
    );
}

#[test]
fn study_and_index_form() {
    let d = tempfile::tempdir().unwrap();
    let run = d.path().join("runs/x");
    fs::create_dir_all(run.join("rounds/0000")).unwrap();
    fs::write(
        run.join("study.json"),
        r#"{"schema": "nago.study/1", "name": "x", "seed": 1,
            "dataset": {"name": "cifar10"},
            "objectives": [{"metric": "val_error", "goal": "min"}],
            "budgets": {"min": 1, "max": 4}}"#,
    )
    .unwrap();
    fs::write(
        run.join("rounds/0000/proposals.json"),
        r#"{"schema": "nago.round/1", "round": 0, "trials": ["00000", "00001"]}"#,
    )
    .unwrap();
    let gen: serde_json::Value = serde_json::from_str(GEN).unwrap();
    for (i, t) in ["00000", "00001"].iter().enumerate() {
        fs::create_dir_all(run.join("trials").join(t)).unwrap();
        let p = serde_json::json!({"schema": "nago.proposal/1", "trial": t, "round": 0,
            "generator": gen["generator"], "budget": 1.0, "seed": 100 + i, "origin": "initial"});
        fs::write(
            run.join("trials").join(t).join("proposal.json"),
            p.to_string(),
        )
        .unwrap();
    }
    let o = generate(&["--run", "runs/x", "--index", "1"], d.path());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let arch = nago_arch::Arch::from_json(
        &fs::read_to_string(run.join("trials/00001/arch.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(arch.seed, 101);
    assert_eq!(
        (arch.input.channels, arch.input.height, arch.input.classes),
        (3, 32, 10)
    );
    assert!(!run.join("trials/00000/arch.json").exists());
    // The index can come from Slurm's environment.
    let o = Command::new(env!("CARGO_BIN_EXE_nago-generate"))
        .args(["--run", "runs/x"])
        .env("SLURM_ARRAY_TASK_ID", "0")
        .current_dir(d.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(run.join("trials/00000/arch.json").exists());
    let o = generate(&["--run", "runs/x", "--index", "2"], d.path());
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("index 2 is out of range"));
}

#[test]
fn summary_prints_the_distribution() {
    let d = tempfile::tempdir().unwrap();
    fs::write(d.path().join("g.json"), GEN).unwrap();
    let o = generate(
        &["--proposal", "g.json", "--samples", "20", "--summary"],
        d.path(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s = String::from_utf8_lossy(&o.stdout);
    for row in ["params", "MACs", "cells", "op-graphs", "operations"] {
        assert!(s.contains(row), "{s}");
    }
    assert!(s.contains("20 architectures"));
    assert_eq!(
        fs::read_dir(d.path()).unwrap().count(),
        1,
        "--summary writes nothing"
    );
}

/// Bad input: a clear error naming the field, a non-zero exit, nothing written.
#[test]
fn bad_generators_are_refused() {
    let level = r#"{"model": "ws", "n": 5, "k": 2, "p": 0.5}"#;
    let cases: Vec<(String, &str)> = vec![
        (
            format!(r#"{{"top": {level}, "mid": {level}}}"#),
            "missing field `bottom`",
        ),
        (
            format!(r#"{{"top": {level}, "mid": {level}, "bottom": {level}, "extra": 1}}"#),
            "unknown field `extra`",
        ),
        (
            format!(
                r#"{{"top": {level}, "mid": {level}, "bottom": {{"model": "ws", "n": 5, "k": 2, "p": NaN}}}}"#
            ),
            "not valid JSON",
        ),
        (
            format!(
                r#"{{"top": {level}, "mid": {level}, "bottom": {{"model": "ws", "n": 5, "k": 2, "p": 1.5}}}}"#
            ),
            "bottom.p: 1.5 is out of range",
        ),
        (
            format!(
                r#"{{"top": {{"model": "ws", "n": 0, "k": 2, "p": 0.5}}, "mid": {level}, "bottom": {level}}}"#
            ),
            "top.n: 0 is out of range",
        ),
        (
            format!(
                r#"{{"top": {{"model": "xx", "n": 4, "k": 2, "p": 0.5}}, "mid": {level}, "bottom": {level}}}"#
            ),
            "unknown variant `xx`",
        ),
        (
            format!(
                r#"{{"top": {{"model": "ws", "n": "4", "k": 2, "p": 0.5}}, "mid": {level}, "bottom": {level}}}"#
            ),
            "top.n: invalid type",
        ),
        (
            format!(
                r#"{{"top": {level}, "mid": {level}, "bottom": {level}, "ops": {{"conv3x3": 0}}}}"#
            ),
            "ops: all weights are 0",
        ),
        (
            format!(
                r#"{{"top": {level}, "mid": {level}, "bottom": {level}, "ops": {{"conv9x9": 1}}}}"#
            ),
            "unknown field `conv9x9`",
        ),
        (
            format!(r#"{{"top": {level}, "mid": {level}, "bottom": {level}, "param_limit": -5}}"#),
            "param_limit: -5 is out of range",
        ),
        (
            r#"{"schema": "nago.generator/9", "generator": {}}"#.to_string(),
            "expected \"nago.generator/1\"",
        ),
        (
            r#"{"schema": "nago.proposal/0", "trial": "t"}"#.to_string(),
            "expected \"nago.proposal/1\"",
        ),
        ("[1, 2".to_string(), "not valid JSON"),
    ];
    for (i, (text, expect)) in cases.iter().enumerate() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("g.json"), text).unwrap();
        let o = generate(
            &["--proposal", "g.json", "--seed", "1", "--out", "out"],
            d.path(),
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "case {i}: {text}\n{err}");
        assert!(
            err.contains("g.json"),
            "case {i}: the error names the file: {err}"
        );
        assert!(
            err.contains(expect),
            "case {i}: expected `{expect}` in: {err}"
        );
        assert!(
            !d.path().join("out").exists(),
            "case {i}: nothing may be written"
        );
    }
}

#[test]
fn edge_generators_are_accepted() {
    // P = 0 and P = 1, K ≥ N (clipped), N at the bounds, a one-node mid level.
    let cases = [
        r#"{"top": {"model": "ws", "n": 3, "k": 9, "p": 0.0}, "mid": {"model": "er", "n": 1, "k": 2, "p": 0.0}, "bottom": {"model": "ws", "n": 3, "k": 2, "p": 1.0}}"#,
        r#"{"top": {"model": "ws", "n": 10, "k": 5, "p": 1.0}, "mid": {"model": "er", "n": 10, "k": 2, "p": 1.0}, "bottom": {"model": "ws", "n": 10, "k": 12, "p": 0.0}, "param_limit": 1e4}"#,
        r#"{"top": {"model": "ba", "n": 2, "k": 5, "p": 0.5}, "mid": {"model": "er", "n": 1, "k": 2, "p": 0.0}, "bottom": {"model": "ba", "n": 1, "k": 1, "p": 0.5}}"#,
    ];
    // ER(6, 0) is never connected: the method redraws until connected, so this is an error
    // that names the level (it used to be patched into a chain, a different distribution).
    let d = tempfile::tempdir().unwrap();
    fs::write(
        d.path().join("g.json"),
        r#"{"top": {"model": "ba", "n": 2, "k": 5, "p": 0.5}, "mid": {"model": "er", "n": 6, "k": 2, "p": 0.0}, "bottom": {"model": "ba", "n": 1, "k": 1, "p": 0.5}}"#,
    )
    .unwrap();
    let o = generate(
        &["--proposal", "g.json", "--seed", "5", "--out", "out"],
        d.path(),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("mid"), "the error names the level: {err}");
    assert!(!d.path().join("out/arch.json").exists());
    for (i, text) in cases.iter().enumerate() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("g.json"), text).unwrap();
        let o = generate(
            &["--proposal", "g.json", "--seed", "5", "--out", "out"],
            d.path(),
        );
        assert!(
            o.status.success(),
            "case {i}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        nago_arch::Arch::from_json(&fs::read_to_string(d.path().join("out/arch.json")).unwrap())
            .unwrap();
    }
}

#[test]
fn bad_shapes_and_missing_seed() {
    let d = tempfile::tempdir().unwrap();
    fs::write(d.path().join("g.json"), GEN).unwrap();
    for (args, expect) in [
        (vec!["--proposal", "g.json", "--out", "o"], "pass --seed"),
        (
            vec![
                "--proposal",
                "g.json",
                "--seed",
                "1",
                "--shape",
                "1x28",
                "--out",
                "o",
            ],
            "expected CxHxW",
        ),
        (
            vec![
                "--proposal",
                "g.json",
                "--seed",
                "1",
                "--shape",
                "1x2x2",
                "--out",
                "o",
            ],
            "4x4",
        ),
        (
            vec!["--proposal", "missing.json", "--seed", "1", "--out", "o"],
            "missing.json",
        ),
    ] {
        let o = generate(&args, d.path());
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(expect), "{args:?}: {err}");
        assert!(!d.path().join("o").exists());
    }
}

#[test]
fn baselines_are_written_named_and_idempotent() {
    let d = tempfile::tempdir().unwrap();
    let o = generate(&["--baseline", "resnet20", "--out", "r"], d.path());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = fs::read_to_string(d.path().join("r/arch.json")).unwrap();
    let arch = nago_arch::Arch::from_json(&text).unwrap();
    assert_eq!(arch.name.as_deref(), Some("resnet20"));
    assert!(d.path().join("r/arch.dot").is_file());
    let o = generate(&["--baseline", "resnet20", "--out", "r"], d.path());
    assert!(String::from_utf8_lossy(&o.stderr).contains("kept existing"));
    // Another network into the same directory needs --force; the file is untouched.
    let o = generate(&["--baseline", "plain-cnn", "--out", "r"], d.path());
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--force"));
    assert_eq!(
        fs::read_to_string(d.path().join("r/arch.json")).unwrap(),
        text
    );
    // An unknown name lists the known ones; with a proposal it is a usage error.
    let o = generate(&["--baseline", "vgg16", "--out", "v"], d.path());
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains("plain-cnn") && e.contains("resnet20"), "{e}");
    assert!(!d.path().join("v").exists());
    fs::write(d.path().join("g.json"), GEN).unwrap();
    let o = generate(
        &[
            "--baseline",
            "resnet20",
            "--proposal",
            "g.json",
            "--out",
            "x",
        ],
        d.path(),
    );
    assert!(!o.status.success());
}
