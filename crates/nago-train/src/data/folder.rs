//! Image folders, one folder per class: `train/<class>/*.png|jpg|jpeg` and optionally
//! `test/<class>/…` (else a seeded, per-class split of train), the layout of torchvision's
//! ImageFolder and Keras' `image_dataset_from_directory`.
//!
//! Images are converted to the network's channels (1: grayscale, 3: RGB), and with
//! `image_size` resized so that the shorter side has that many pixels, then centre-cropped to
//! a square. Decoding is slow next to training a small network, so the decoded images are
//! cached once per (listing, options) as one safetensors file (`folder-<digest>.safetensors`
//! under `<data>/.nago-cache/`, or `$NAGO_DATA_CACHE`); the listing digest covers every file's
//! path, size and modification time, so an edited folder is decoded again. The cache is
//! written under a temporary name and renamed (a killed trainer leaves no half cache), and a
//! cache that cannot be written (read-only data) only costs the next trial the decoding.

use super::{DataError, Dataset, Split};
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// File name endings read as images (case-insensitive); other files are ignored.
pub const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// Schema tag of the cache file's `meta/json`.
const CACHE_SCHEMA: &str = "nago.folder-cache/1";

/// How to read an image folder.
#[derive(Debug, Clone, PartialEq)]
pub struct FolderOptions {
    /// Channels of the tensors: 1 (colour images are converted to grayscale) or 3
    /// (grayscale images are replicated).
    pub channels: u32,
    /// Resize the shorter side to this and centre-crop to a square; `None`: every image must
    /// have the size of the first.
    pub image_size: Option<u32>,
    /// Seed of the test split when there is no `test/` folder.
    pub split_seed: u64,
    /// Fraction of each class held out as the test set when there is no `test/` folder.
    pub test_fraction: f64,
    /// Where the decoded cache lives (`None`: `$NAGO_DATA_CACHE`, else `<path>/.nago-cache`).
    pub cache_dir: Option<PathBuf>,
}

impl Default for FolderOptions {
    fn default() -> Self {
        FolderOptions {
            channels: 3,
            image_size: None,
            split_seed: 0,
            test_fraction: 0.1,
            cache_dir: None,
        }
    }
}

/// One split's files: (class index, path), classes in name order, files in name order.
struct Listing {
    classes: Vec<String>,
    train: Vec<(i64, PathBuf)>,
    test: Option<Vec<(i64, PathBuf)>>,
}

fn is_image(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| DataError::io(dir, e))?
        .map(|e| e.map(|e| e.path()).map_err(|e| DataError::io(dir, e)))
        .collect::<Result<_, _>>()?;
    v.sort();
    Ok(v)
}

/// The class folders of `split_dir` and their images; every class folder must hold one.
fn list_split(split_dir: &Path) -> Result<Vec<(String, Vec<PathBuf>)>, DataError> {
    let mut out = Vec::new();
    for p in sorted_entries(split_dir)? {
        if !p.is_dir() {
            continue;
        }
        let name = p
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| DataError::format(&p, "a class folder's name must be UTF-8"))?
            .to_string();
        if name.starts_with('.') {
            continue;
        }
        let files: Vec<PathBuf> = sorted_entries(&p)?
            .into_iter()
            .filter(|f| f.is_file() && is_image(f))
            .collect();
        if files.is_empty() {
            return Err(DataError::format(
                &p,
                format!(
                    "class folder `{name}` holds no image (expected *.png, *.jpg or *.jpeg files)"
                ),
            ));
        }
        out.push((name, files));
    }
    Ok(out)
}

fn list(path: &Path) -> Result<Listing, DataError> {
    let train_dir = path.join("train");
    if !train_dir.is_dir() {
        return Err(DataError::Missing {
            path: train_dir,
            message: "an image folder dataset needs train/<class>/*.png|jpg|jpeg (and \
                      optionally test/<class>/...)"
                .into(),
        });
    }
    let train = list_split(&train_dir)?;
    if train.is_empty() {
        return Err(DataError::format(
            &train_dir,
            "no class folders (expected train/<class>/*.png|jpg|jpeg)",
        ));
    }
    let classes: Vec<String> = train.iter().map(|(n, _)| n.clone()).collect();
    let flat = |split: Vec<(String, Vec<PathBuf>)>| -> Vec<(i64, PathBuf)> {
        split
            .into_iter()
            .flat_map(|(n, files)| {
                let c = classes.iter().position(|x| *x == n).unwrap() as i64;
                files.into_iter().map(move |f| (c, f))
            })
            .collect()
    };
    let test_dir = path.join("test");
    let test = if test_dir.is_dir() {
        let t = list_split(&test_dir)?;
        if let Some((n, _)) = t.iter().find(|(n, _)| !classes.contains(n)) {
            return Err(DataError::format(
                &test_dir.join(n),
                format!(
                    "test class `{n}` has no folder under train/ (classes: {})",
                    classes.join(", ")
                ),
            ));
        }
        if t.is_empty() {
            return Err(DataError::format(&test_dir, "no class folders"));
        }
        Some(flat(t))
    } else {
        None
    };
    Ok(Listing {
        train: flat(train),
        test,
        classes,
    })
}

/// SHA-256 over every listed file's path (relative), size and modification time, and the
/// options that change the decoded pixels.
fn listing_digest(root: &Path, l: &Listing, opts: &FolderOptions) -> Result<String, DataError> {
    let mut text = format!(
        "{CACHE_SCHEMA}\nchannels {}\nimage_size {:?}\n",
        opts.channels, opts.image_size
    );
    let splits = [Some(&l.train), l.test.as_ref()];
    for (name, files) in ["train", "test"].iter().zip(splits) {
        for (c, f) in files.into_iter().flatten() {
            let m = std::fs::metadata(f).map_err(|e| DataError::io(f, e))?;
            let t = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .unwrap_or_default();
            let rel = f.strip_prefix(root).unwrap_or(f);
            text.push_str(&format!(
                "{name}\t{c}\t{}\t{}\t{}.{:09}\n",
                rel.display(),
                m.len(),
                t.as_secs(),
                t.subsec_nanos()
            ));
        }
    }
    Ok(nago_store::sha256_hex(text.as_bytes()))
}

/// One decoded image: C·H·W bytes, width, height.
type Decoded = (Vec<u8>, u32, u32);

/// Decodes one image into C·H·W bytes of the target channels and size.
fn decode(path: &Path, opts: &FolderOptions) -> Result<Decoded, DataError> {
    let img = image::ImageReader::open(path)
        .and_then(|r| r.with_guessed_format())
        .map_err(|e| DataError::io(path, e))?
        .decode()
        .map_err(|e| DataError::format(path, format!("not a readable image: {e}")))?;
    let img = match opts.image_size {
        Some(s) => {
            let (w, h) = (img.width(), img.height());
            let short = w.min(h).max(1) as f64;
            let nw = ((w as f64 * s as f64 / short).round() as u32).max(s);
            let nh = ((h as f64 * s as f64 / short).round() as u32).max(s);
            let r = img.resize_exact(nw, nh, image::imageops::FilterType::Triangle);
            r.crop_imm((nw - s) / 2, (nh - s) / 2, s, s)
        }
        None => img,
    };
    let (w, h) = (img.width(), img.height());
    let hwc: Vec<u8> = if opts.channels == 1 {
        img.to_luma8().into_raw()
    } else {
        img.to_rgb8().into_raw()
    };
    let c = opts.channels as usize;
    let (wu, hu) = (w as usize, h as usize);
    let mut chw = vec![0u8; hwc.len()];
    for y in 0..hu {
        for x in 0..wu {
            for k in 0..c {
                chw[k * hu * wu + y * wu + x] = hwc[(y * wu + x) * c + k];
            }
        }
    }
    Ok((chw, w, h))
}

/// Decodes a split's files into a [`Split`]; every image must come out the same size.
/// The files are decoded on every core this process may use (in file order per chunk; the
/// first failing file in order is the one reported).
fn decode_split(
    files: &[(i64, PathBuf)],
    opts: &FolderOptions,
    bar: &indicatif::ProgressBar,
) -> Result<Split, DataError> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, files.len().max(1));
    let chunk = files.len().div_ceil(threads).max(1);
    let decoded: Vec<Result<Vec<Decoded>, DataError>> = std::thread::scope(|s| {
        let workers: Vec<_> = files
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|(_, f)| {
                            let r = decode(f, opts);
                            bar.inc(1);
                            r
                        })
                        .collect()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("an image decoder thread panicked"))
            .collect()
    });
    let mut pixels = Vec::new();
    let mut labels = Vec::with_capacity(files.len());
    let mut size: Option<(u32, u32, &Path)> = None;
    let images = decoded.into_iter().collect::<Result<Vec<_>, _>>()?;
    for ((c, f), (px, w, h)) in files.iter().zip(images.into_iter().flatten()) {
        match size {
            None => size = Some((w, h, f)),
            Some((w0, h0, first)) if (w, h) != (w0, h0) => {
                return Err(DataError::format(
                    f,
                    format!(
                        "is {w}×{h} pixels but {} is {w0}×{h0}; set dataset.image_size in \
                         study.json to resize every image",
                        first.display()
                    ),
                ))
            }
            _ => {}
        }
        pixels.extend_from_slice(&px);
        labels.push(*c);
    }
    let (w, h, _) = size.expect("a split has images");
    Ok(Split::from_raw(
        &pixels,
        &labels,
        opts.channels as usize,
        h as usize,
        w as usize,
    ))
}

/// Holds out `fraction` of each class (at least one image of a class with two or more) as
/// the test set, by a seeded shuffle. Returns (train, test).
fn split_train(all: Split, classes: usize, seed: u64, fraction: f64) -> (Split, Split) {
    let labels: Vec<i64> = Vec::<i64>::try_from(&all.labels).unwrap_or_default();
    let mut rng = crate::rng::SplitMix::new(seed);
    let (mut tr, mut te): (Vec<i64>, Vec<i64>) = (Vec::new(), Vec::new());
    for c in 0..classes as i64 {
        let mut idx: Vec<i64> = (0..labels.len() as i64)
            .filter(|&i| labels[i as usize] == c)
            .collect();
        for i in (1..idx.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            idx.swap(i, j);
        }
        let k = if idx.len() >= 2 {
            ((idx.len() as f64 * fraction).round() as usize).clamp(1, idx.len() - 1)
        } else {
            0
        };
        te.extend_from_slice(&idx[..k]);
        tr.extend_from_slice(&idx[k..]);
    }
    tr.sort_unstable();
    te.sort_unstable();
    (
        all.select(&Tensor::from_slice(&tr)),
        all.select(&Tensor::from_slice(&te)),
    )
}

#[derive(serde::Serialize, serde::Deserialize)]
struct CacheMeta {
    schema: String,
    classes: Vec<String>,
    has_test: bool,
}

fn cache_path(path: &Path, opts: &FolderOptions, digest: &str) -> PathBuf {
    let dir = opts
        .cache_dir
        .clone()
        .or_else(|| std::env::var_os("NAGO_DATA_CACHE").map(PathBuf::from))
        .unwrap_or_else(|| path.join(".nago-cache"));
    dir.join(format!("folder-{}.safetensors", &digest[..16]))
}

/// The cached splits, or `None` when there is no usable cache (absent or unreadable: then
/// it is rebuilt).
fn read_cache(p: &Path) -> Option<(Vec<String>, Split, Option<Split>)> {
    let named = Tensor::read_safetensors(p).ok()?;
    let get = |n: &str| {
        named
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, t)| t.shallow_clone())
    };
    let meta: Vec<u8> = Vec::<u8>::try_from(&get("meta/json")?).ok()?;
    let meta: CacheMeta = serde_json::from_slice(&meta).ok()?;
    if meta.schema != CACHE_SCHEMA {
        return None;
    }
    let split = |s: &str| -> Option<Split> {
        Some(Split {
            images: get(&format!("{s}/images"))?,
            labels: get(&format!("{s}/labels"))?,
        })
    };
    let train = split("train")?;
    let test = if meta.has_test {
        Some(split("test")?)
    } else {
        None
    };
    Some((meta.classes, train, test))
}

fn write_cache(
    p: &Path,
    classes: &[String],
    train: &Split,
    test: Option<&Split>,
) -> Result<(), String> {
    let dir = p.parent().ok_or("no cache directory")?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let meta = CacheMeta {
        schema: CACHE_SCHEMA.into(),
        classes: classes.to_vec(),
        has_test: test.is_some(),
    };
    let json = serde_json::to_vec(&meta).map_err(|e| e.to_string())?;
    let mut named: Vec<(String, Tensor)> = vec![
        (
            "meta/json".into(),
            Tensor::from_slice(&json).to_kind(Kind::Uint8),
        ),
        ("train/images".into(), train.images.shallow_clone()),
        ("train/labels".into(), train.labels.shallow_clone()),
    ];
    if let Some(t) = test {
        named.push(("test/images".into(), t.images.shallow_clone()));
        named.push(("test/labels".into(), t.labels.shallow_clone()));
    }
    let tmp = p.with_extension(format!("tmp.{}", std::process::id()));
    let r = Tensor::write_safetensors(&named, &tmp)
        .map_err(|e| e.to_string())
        .and_then(|()| {
            std::fs::File::open(&tmp)
                .and_then(|f| f.sync_all())
                .map_err(|e| e.to_string())
        })
        .and_then(|()| std::fs::rename(&tmp, p).map_err(|e| e.to_string()));
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

/// Reads an image folder dataset at `path` (see the module documentation).
pub fn read_folder(path: &Path, opts: &FolderOptions) -> Result<Dataset, DataError> {
    if opts.channels != 1 && opts.channels != 3 {
        return Err(DataError::format(
            path,
            format!(
                "{} channels: an image folder gives 1 (grayscale) or 3 (RGB)",
                opts.channels
            ),
        ));
    }
    let listing = list(path)?;
    let digest = listing_digest(path, &listing, opts)?;
    let cache = cache_path(path, opts, &digest);
    let classes = listing.classes.len();
    let (train, test) = match read_cache(&cache) {
        Some((names, train, test)) if names == listing.classes => (train, test),
        _ => {
            let n = listing.train.len() + listing.test.as_ref().map_or(0, |t| t.len());
            let bar = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
                let b = indicatif::ProgressBar::new(n as u64);
                b.set_style(
                    indicatif::ProgressStyle::with_template(
                        "decoding {msg} {bar:30} {pos}/{len} images ({per_sec}, eta {eta})",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
                b.set_message(path.display().to_string());
                b
            } else {
                eprintln!(
                    "nago-train: decoding {n} images of {} (once; then cached)",
                    path.display()
                );
                indicatif::ProgressBar::hidden()
            };
            let train = decode_split(&listing.train, opts, &bar)?;
            let test = match &listing.test {
                Some(t) => Some(decode_split(t, opts, &bar)?),
                None => None,
            };
            bar.finish_and_clear();
            if let (Some(t), s) = (&test, train.images.size()) {
                let ts = t.images.size();
                if ts[2..] != s[2..] {
                    return Err(DataError::format(
                        &path.join("test"),
                        format!(
                            "test images are {}×{} but training images {}×{}; set \
                             dataset.image_size to resize both",
                            ts[3], ts[2], s[3], s[2]
                        ),
                    ));
                }
            }
            if let Err(e) = write_cache(&cache, &listing.classes, &train, test.as_ref()) {
                eprintln!(
                    "nago-train: note: the decoded images could not be cached ({e}); the next \
                     trial decodes them again (set NAGO_DATA_CACHE to a writable directory)"
                );
            }
            (train, test)
        }
    };
    let (train, test) = match test {
        Some(t) => (train, t),
        None => split_train(train, classes, opts.split_seed, opts.test_fraction),
    };
    Ok(Dataset {
        name: "folder".into(),
        train,
        test,
        classes: classes as u32,
    })
}
