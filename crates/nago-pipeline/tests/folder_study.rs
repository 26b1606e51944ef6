//! Smoke studies on image folders the test writes itself (`dataset.name: "folder"`):
//! Fashion-MNIST written as PNG files, and a 3-channel folder of mixed-size PNG and JPEG
//! images resized to 64×64. Each runs the whole search (final round included) through the
//! real stage binaries; the first trial decodes the images, the later ones load the cache.
//!
//! Needs the stage binaries next to nago-search and Fashion-MNIST under data/ (`make test`).

mod common;
use common::repo;
use nago_store::{read_json, StudyDir, TrialResult, TrialStatus, RESULT_SCHEMA};
use std::io::Read;
use std::path::Path;
use std::process::Command;

/// An IDX file of unsigned bytes (gzipped): its dimensions and bytes.
fn read_idx_gz(path: &Path) -> (Vec<usize>, Vec<u8>) {
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_end(&mut bytes)
        .unwrap();
    let nd = bytes[3] as usize;
    let dims: Vec<usize> = (0..nd)
        .map(|i| u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().unwrap()) as usize)
        .collect();
    (dims, bytes[4 + 4 * nd..].to_vec())
}

/// The first images of Fashion-MNIST's two splits as `train|test/<class name>/<i>.png`.
fn write_fmnist_folder(root: &Path, n_train: usize, n_test: usize) {
    let names = [
        "t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
        "boot",
    ];
    let data = repo().join("data/fashion-mnist");
    for (split, prefix, n) in [("train", "train", n_train), ("test", "t10k", n_test)] {
        let (_, px) = read_idx_gz(&data.join(format!("{prefix}-images-idx3-ubyte.gz")));
        let (_, lab) = read_idx_gz(&data.join(format!("{prefix}-labels-idx1-ubyte.gz")));
        for i in 0..n {
            let dir = root.join(split).join(names[lab[i] as usize]);
            std::fs::create_dir_all(&dir).unwrap();
            image::GrayImage::from_raw(28, 28, px[i * 784..(i + 1) * 784].to_vec())
                .unwrap()
                .save(dir.join(format!("{i:05}.png")))
                .unwrap();
        }
    }
}

/// Three learnable classes of colour images in several sizes and both formats, no test/
/// folder (the study's seeded split holds some out).
fn write_rgb_folder(root: &Path, per_class: u32) {
    for c in 0..3u32 {
        let dir = root
            .join("train")
            .join(["red", "green", "blue"][c as usize]);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..per_class {
            // Photo-like sizes, larger than the 64 × 64 the study resizes to.
            let (w, h) = [(256, 200), (200, 200), (180, 270)][(i % 3) as usize];
            let im = image::RgbImage::from_fn(w, h, |x, y| {
                let mut p = [((x * 7 + y * 3 + i * 11) % 50) as u8; 3];
                p[c as usize] = 150 + ((x + y + i) % 100) as u8;
                image::Rgb(p)
            });
            let ext = if i % 2 == 0 { "png" } else { "jpg" };
            im.save(dir.join(format!("{i:04}.{ext}"))).unwrap();
        }
    }
}

/// The smoke preset with another dataset and two evaluations, trained without a subset.
fn study_file(dir: &Path, dataset: serde_json::Value) -> std::path::PathBuf {
    let text = std::fs::read_to_string(repo().join("pipelines/presets/smoke.json")).unwrap();
    let mut s: serde_json::Value = serde_json::from_str(&text).unwrap();
    s["name"] = "folder-smoke".into();
    s["dataset"] = dataset;
    // Two evaluations and the final round's two: four trials, the fewest that show the
    // cache across trials, kept cheap because CI runs them.
    s["search"]["max_evaluations"] = 2.into();
    s["training"] =
        serde_json::json!({"lr": 0.1, "batch_size": 32, "crop_padding": 0, "flip": false});
    let p = dir.join("study.json");
    std::fs::write(&p, serde_json::to_string_pretty(&s).unwrap()).unwrap();
    p
}

/// Runs the search to its end with one worker (so trial after trial shares the cache) and
/// returns every trial's result and its data-loading seconds, in the order they were trained.
fn search(study: &Path, run: &Path) -> Vec<(TrialResult, f64, bool)> {
    let out = Command::new(env!("CARGO_BIN_EXE_nago-search"))
        .arg("--preset")
        .arg(study)
        .arg("--run")
        .arg(run)
        .args(["--parallel", "1"])
        .current_dir(repo())
        .env_remove("SLURM_ARRAY_TASK_ID")
        .env_remove("NAGO_DATA_CACHE")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "nago-search failed:\n{err}");
    assert!(err.contains("search done"), "{err}");
    let sd = StudyDir::new(run);
    let mut rows = Vec::new();
    for r in sd.rounds().unwrap() {
        for t in sd.proposals(r).unwrap().trials {
            let dir = sd.trial_dir(&t);
            let res: TrialResult = read_json(&dir.join("result.json"), Some(RESULT_SCHEMA))
                .unwrap_or_else(|e| panic!("{e}"));
            if res.status == TrialStatus::Rejected {
                continue;
            }
            let log = std::fs::read_to_string(dir.join("train.log")).unwrap();
            let decoded = log.contains("decoding");
            // The trainer's line: `data: folder (N training + M test images) loaded in S s`.
            let secs = log
                .lines()
                .filter_map(|l| l.split(" loaded in ").nth(1))
                .map(|s| s.trim_end_matches(" s").parse::<f64>().unwrap())
                .next()
                .unwrap_or_else(|| panic!("no data line in {}:\n{log}", dir.display()));
            let started = std::fs::metadata(dir.join("train.log"))
                .unwrap()
                .created()
                .or_else(|_| std::fs::metadata(dir.join("arch.json")).unwrap().modified())
                .unwrap();
            rows.push((started, res, secs, decoded));
        }
    }
    rows.sort_by_key(|r| r.0);
    rows.into_iter().map(|(_, r, s, d)| (r, s, d)).collect()
}

/// Every trial trained; the first decoded the folder and each later one loaded the cache
/// instead (the train.log says which). How much faster the cache is gets printed, not
/// asserted: it is a timing, and on a loaded CI machine a 0.05 s load says nothing (the
/// README's figures come from a run of this test on an idle machine).
/// Returns (first trial's seconds, the later trials' median).
fn check(rows: &[(TrialResult, f64, bool)], classes: f64) -> (f64, f64) {
    assert!(rows.len() >= 4, "{rows:?}");
    assert!(
        rows.iter().all(|(r, _, _)| r.status == TrialStatus::Ok),
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .any(|(r, _, _)| r.val_accuracy.unwrap() > 1.5 / classes),
        "nothing learned: {rows:?}"
    );
    let (_, first, decoded) = &rows[0];
    assert!(*decoded, "the first trial did not decode the images");
    let mut later: Vec<f64> = rows[1..].iter().map(|r| r.1).collect();
    for (r, s, d) in &rows[1..] {
        assert!(
            !d,
            "a later trial decoded the folder again ({s:.3} s): {r:?}"
        );
    }
    later.sort_by(f64::total_cmp);
    let median = later[later.len() / 2];
    eprintln!(
        "data loading: first trial {first:.3} s (decoding), later trials {later:?} s (cache), \
         {:.1}× faster",
        first / median
    );
    (*first, median)
}

/// This study's objectives are val_error and latency_ms (the trainer's CPU latency at
/// batch 1): the latency reaches the table, the front and the report.
#[test]
fn smoke_study_on_a_folder_of_fashion_mnist_pngs_with_latency_as_an_objective() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("fmnist-png");
    write_fmnist_folder(&data, 1500, 300);
    let study = study_file(
        d.path(),
        serde_json::json!({"name": "folder", "path": data, "channels": 1, "height": 28,
                           "width": 28, "classes": 10, "validation": 200}),
    );
    let mut s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&study).unwrap()).unwrap();
    s["objectives"] = serde_json::json!([{"metric": "val_error", "goal": "min"},
                                         {"metric": "latency_ms", "goal": "min", "log": true}]);
    std::fs::write(&study, s.to_string()).unwrap();
    let run = d.path().join("run");
    let rows = search(&study, &run);
    // 28 × 28 PNGs decode about as fast as their pixels load, so the cache is used but its
    // gain is small here; the photo-sized folder below is where it must pay.
    check(&rows, 10.0);
    assert!(rows.iter().all(|(r, _, _)| r.test_accuracy.is_some()));
    assert!(rows
        .iter()
        .all(|(r, _, _)| r.metric("latency_ms").is_some_and(|l| l > 0.0)));
    // The front, as nago-report shows it, is in val_error and latency_ms.
    let report = Path::new(env!("CARGO_BIN_EXE_nago-search")).with_file_name("nago-report");
    let out = Command::new(&report)
        .args(["best", "--format", "json", "--run"])
        .arg(&run)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let best: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!best.is_empty());
    for row in &best {
        let trial = row["trial"].as_str().unwrap();
        let r = &rows.iter().find(|(r, _, _)| r.trial == trial).unwrap().0;
        assert_eq!(
            row["objectives"]["latency_ms"].as_f64(),
            r.metric("latency_ms"),
            "{row}"
        );
    }
    let out = Command::new(&report)
        .args(["html", "--no-graphviz", "--run"])
        .arg(&run)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(run.join("report/index.html")).unwrap();
    assert!(
        html.contains("latency_ms [ms]"),
        "the front's axis is not latency"
    );
    // The cache sits beside the data, one file.
    let cache: Vec<_> = std::fs::read_dir(data.join(".nago-cache"))
        .unwrap()
        .collect();
    assert_eq!(cache.len(), 1);
}

#[test]
fn smoke_study_on_an_rgb_folder_resized_to_64() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("rgb");
    write_rgb_folder(&data, 150);
    let study = study_file(
        d.path(),
        serde_json::json!({"name": "folder", "path": data, "channels": 3, "image_size": 64,
                           "classes": 3, "validation": 30}),
    );
    let run = d.path().join("run");
    let rows = search(&study, &run);
    check(&rows, 3.0);
    // The architectures were generated for 3 × 64 × 64 inputs.
    let sd = StudyDir::new(&run);
    let t = &sd.proposals(0).unwrap().trials[0];
    let arch: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sd.trial_dir(t).join("arch.json")).unwrap())
            .unwrap();
    assert_eq!(arch["input"]["channels"], 3);
    assert_eq!(arch["input"]["height"], 64);
    assert_eq!(arch["input"]["width"], 64);
}
