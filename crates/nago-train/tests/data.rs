//! Each dataset reader on small files.

mod common;

use arrow_array::{ArrayRef, BinaryArray, Int64Array, RecordBatch, StringArray, StructArray};
use arrow_schema::{DataType, Field};
use nago_train::data::{read_idx, DataError, Dataset};
use parquet::arrow::ArrowWriter;
use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;

#[test]
fn idx_plain_and_gzipped() {
    let tmp = tempfile::tempdir().unwrap();
    common::write_synthetic_idx(tmp.path(), 30, 12, 10);
    let ds = Dataset::load("idx", tmp.path()).unwrap();
    assert_eq!(ds.train.images.size(), vec![30, 1, 28, 28]);
    assert_eq!(ds.test.len(), 12);
    assert_eq!(ds.image_shape(), (1, 28, 28));
    assert!(ds.classes <= 10);
    // Bad magic and a truncated header name the file.
    let f = tmp.path().join("x-idx");
    std::fs::write(&f, [1u8, 2, 3, 4, 5]).unwrap();
    let e = read_idx(&f).unwrap_err().to_string();
    assert!(e.contains("x-idx") && e.contains("magic"), "{e}");
    std::fs::write(&f, [0u8, 0, 8, 3, 0, 0]).unwrap();
    assert!(read_idx(&f).unwrap_err().to_string().contains("truncated"));
    // Images stored as [N, H, W, C].
    let d2 = tmp.path().join("hwc");
    std::fs::create_dir_all(&d2).unwrap();
    for (p, n) in [("train", 4u32), ("t10k", 2)] {
        let px: Vec<u8> = (0..n * 5 * 6 * 3).map(|i| (i % 251) as u8).collect();
        common::write_idx(
            &d2.join(format!("{p}-images-idx3-ubyte")),
            &[n, 5, 6, 3],
            &px,
            false,
        );
        common::write_idx(
            &d2.join(format!("{p}-labels-idx1-ubyte")),
            &[n],
            &vec![1u8; n as usize],
            true,
        );
    }
    let ds = Dataset::load("idx", &d2).unwrap();
    assert_eq!(ds.image_shape(), (3, 5, 6));
    // pixel (y=0, x=1, c=2) of image 0 is byte 1*3+2 = 5
    assert_eq!(ds.train.images.int64_value(&[0, 2, 0, 1]), 5);
}

fn cifar_records(n: usize, hundred: bool) -> Vec<u8> {
    let mut v = Vec::new();
    for i in 0..n {
        if hundred {
            v.push((i % 20) as u8); // coarse
        }
        v.push((i % if hundred { 100 } else { 10 }) as u8);
        v.extend((0..3072).map(|p| ((p + i) % 256) as u8));
    }
    v
}

#[test]
fn cifar10_and_cifar100_binary() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("cifar-10-batches-bin");
    std::fs::create_dir_all(&d).unwrap();
    for k in 1..=5 {
        std::fs::write(
            d.join(format!("data_batch_{k}.bin")),
            cifar_records(4, false),
        )
        .unwrap();
    }
    std::fs::write(d.join("test_batch.bin"), cifar_records(3, false)).unwrap();
    let ds = Dataset::load("cifar10", tmp.path()).unwrap();
    assert_eq!(ds.train.images.size(), vec![20, 3, 32, 32]);
    assert_eq!(ds.test.len(), 3);
    assert_eq!(ds.classes, 10);
    // R plane first: pixel (c=1, y=0, x=0) of record 2 is byte 1024 + 2.
    assert_eq!(ds.train.images.int64_value(&[2, 1, 0, 0]), (1024 + 2) % 256);
    assert_eq!(ds.train.labels.int64_value(&[3]), 3);
    // A truncated file names itself.
    std::fs::write(d.join("test_batch.bin"), &cifar_records(3, false)[..5000]).unwrap();
    let e = Dataset::load("cifar10", tmp.path())
        .unwrap_err()
        .to_string();
    assert!(e.contains("test_batch.bin") && e.contains("records"), "{e}");

    let d = tmp.path().join("c100");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("train.bin"), cifar_records(150, true)).unwrap();
    std::fs::write(d.join("test.bin"), cifar_records(5, true)).unwrap();
    let ds = Dataset::load("cifar100", &d).unwrap();
    assert_eq!(ds.classes, 100);
    assert_eq!(ds.train.labels.int64_value(&[120]), 20); // fine label, not coarse
    let e = Dataset::load("cifar100", tmp.path()).unwrap_err();
    assert!(matches!(e, DataError::Missing { .. }));
}

fn png(w: u32, h: u32, rgb: bool, v: u8) -> Vec<u8> {
    let mut buf = Cursor::new(Vec::new());
    if rgb {
        let im =
            image::RgbImage::from_fn(w, h, |x, y| image::Rgb([v, (x * 10) as u8, (y * 10) as u8]));
        im.write_to(&mut buf, image::ImageFormat::Png).unwrap();
    } else {
        let im = image::GrayImage::from_fn(w, h, |x, _| image::Luma([v.wrapping_add(x as u8)]));
        im.write_to(&mut buf, image::ImageFormat::Png).unwrap();
    }
    buf.into_inner()
}

fn jpeg(w: u32, h: u32) -> Vec<u8> {
    let mut buf = Cursor::new(Vec::new());
    let im = image::RgbImage::from_fn(w, h, |_, _| image::Rgb([200, 100, 50]));
    im.write_to(&mut buf, image::ImageFormat::Jpeg).unwrap();
    buf.into_inner()
}

fn write_table(path: &Path, images: Vec<Vec<u8>>, labels: Vec<i64>) {
    let n = images.len();
    let bytes: ArrayRef = Arc::new(BinaryArray::from_iter_values(images.iter()));
    let paths: ArrayRef = Arc::new(StringArray::from_iter_values(
        (0..n).map(|i| format!("{i}.png")),
    ));
    let image = StructArray::from(vec![
        (Arc::new(Field::new("bytes", DataType::Binary, true)), bytes),
        (Arc::new(Field::new("path", DataType::Utf8, true)), paths),
    ]);
    let batch = RecordBatch::try_from_iter(vec![
        ("image", Arc::new(image) as ArrayRef),
        ("label", Arc::new(Int64Array::from(labels)) as ArrayRef),
    ])
    .unwrap();
    let f = std::fs::File::create(path).unwrap();
    let mut w = ArrowWriter::try_new(f, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

#[test]
fn parquet_image_tables() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("hf/data");
    std::fs::create_dir_all(&d).unwrap();
    write_table(
        &d.join("train-00000-of-00002.parquet"),
        (0..5).map(|i| png(8, 6, false, i * 10)).collect(),
        vec![0, 1, 2, 1, 0],
    );
    write_table(
        &d.join("train-00001-of-00002.parquet"),
        (0..3).map(|i| png(8, 6, false, i)).collect(),
        vec![2, 2, 3],
    );
    write_table(
        &d.join("test-00000-of-00001.parquet"),
        vec![png(8, 6, false, 7)],
        vec![1],
    );
    let ds = Dataset::load("parquet", &tmp.path().join("hf")).unwrap();
    assert_eq!(ds.train.images.size(), vec![8, 1, 6, 8]);
    assert_eq!(ds.classes, 4);
    assert_eq!(ds.train.images.int64_value(&[1, 0, 2, 3]), 13);
    // RGB JPEG and PNG.
    let d = tmp.path().join("rgb");
    std::fs::create_dir_all(&d).unwrap();
    write_table(
        &d.join("train.parquet"),
        vec![png(4, 4, true, 9), jpeg(4, 4)],
        vec![0, 1],
    );
    write_table(&d.join("test.parquet"), vec![png(4, 4, true, 1)], vec![1]);
    let ds = Dataset::load("parquet", &d).unwrap();
    assert_eq!(ds.image_shape(), (3, 4, 4));
    assert_eq!(ds.train.images.int64_value(&[0, 0, 0, 0]), 9);
    assert_eq!(ds.train.images.int64_value(&[0, 1, 0, 2]), 20);
    // Mixed sizes are an error naming the row.
    let d = tmp.path().join("mixed");
    std::fs::create_dir_all(&d).unwrap();
    write_table(
        &d.join("train.parquet"),
        vec![png(4, 4, true, 9), png(5, 4, true, 9)],
        vec![0, 1],
    );
    write_table(&d.join("test.parquet"), vec![png(4, 4, true, 1)], vec![1]);
    let e = Dataset::load("parquet", &d).unwrap_err().to_string();
    assert!(e.contains("train.parquet") && e.contains("row 1"), "{e}");
    // Garbage bytes.
    let d = tmp.path().join("garbage");
    std::fs::create_dir_all(&d).unwrap();
    write_table(
        &d.join("train.parquet"),
        vec![b"not an image".to_vec()],
        vec![0],
    );
    write_table(&d.join("test.parquet"), vec![png(4, 4, true, 1)], vec![0]);
    let e = Dataset::load("parquet", &d).unwrap_err().to_string();
    assert!(e.contains("decode"), "{e}");
}

#[test]
fn unknown_and_missing_datasets() {
    let tmp = tempfile::tempdir().unwrap();
    let e = Dataset::load("imagenet", tmp.path())
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown dataset kind `imagenet`"), "{e}");
    let e = Dataset::load("idx", tmp.path()).unwrap_err().to_string();
    assert!(e.contains("train-images-idx3-ubyte"), "{e}");
}

// ---- image folders -------------------------------------------------------------------

use nago_train::data::FolderOptions;
use tch::{Kind, Tensor};

/// Files of a directory tree, relative, sorted (what a failed read must not have added to).
fn tree(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, d: &Path, out: &mut Vec<String>) {
        if let Ok(rd) = std::fs::read_dir(d) {
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(root, &p, out);
                } else {
                    out.push(p.strip_prefix(root).unwrap().display().to_string());
                }
            }
        }
    }
    let mut v = Vec::new();
    walk(dir, dir, &mut v);
    v.sort();
    v
}

/// The first `n` images of a Fashion-MNIST split written as `<dir>/c<label>/<index>.png`;
/// returns the order a folder reader must give them in (class folders, then file names).
fn write_fmnist_pngs(split: &nago_train::data::Split, n: usize, dir: &Path) -> Vec<i64> {
    let labels = Vec::<i64>::try_from(&split.labels.narrow(0, 0, n as i64)).unwrap();
    for (i, &c) in labels.iter().enumerate() {
        let px = Vec::<u8>::try_from(&split.images.get(i as i64).flatten(0, -1)).unwrap();
        let im = image::GrayImage::from_raw(28, 28, px).unwrap();
        let d = dir.join(format!("c{c}"));
        std::fs::create_dir_all(&d).unwrap();
        im.save(d.join(format!("{i:05}.png"))).unwrap();
    }
    let mut order: Vec<i64> = (0..n as i64).collect();
    order.sort_by_key(|&i| (labels[i as usize], i));
    order
}

#[test]
fn fashion_mnist_png_folder_gives_the_idx_pixels_and_labels() {
    let fm = Dataset::load("fashion-mnist", &common::fmnist_dir())
        .expect("Fashion-MNIST under data/ (make data)");
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("fmnist-png");
    let tr = write_fmnist_pngs(&fm.train, 400, &root.join("train"));
    let te = write_fmnist_pngs(&fm.test, 100, &root.join("test"));
    let opts = FolderOptions {
        channels: 1,
        cache_dir: Some(tmp.path().join("cache")),
        ..Default::default()
    };
    for pass in ["decoded", "cached"] {
        let ds = Dataset::load_with("folder", &root, &opts).unwrap();
        assert_eq!(ds.classes, 10, "{pass}");
        assert_eq!(ds.image_shape(), (1, 28, 28), "{pass}");
        for (got, want, order) in [(&ds.train, &fm.train, &tr), (&ds.test, &fm.test, &te)] {
            let idx = Tensor::from_slice(order);
            let want = want.select(&idx);
            assert_eq!(got.images.kind(), Kind::Uint8);
            assert!(got.images.equal(&want.images), "{pass}: pixels differ");
            // Folder `c<k>` is class k: the names sort like the labels.
            assert!(got.labels.equal(&want.labels), "{pass}: labels differ");
        }
        // One cache file, no temporary left beside it.
        let cache = tree(&tmp.path().join("cache"));
        assert_eq!(cache.len(), 1, "{cache:?}");
        assert!(cache[0].starts_with("folder-") && cache[0].ends_with(".safetensors"));
    }
}

/// An RGB image whose red channel is 3·x and green 3·y (so a crop is visible), blue = class.
fn coded_rgb(w: u32, h: u32, class: u8) -> image::RgbImage {
    image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(3 * x) as u8, (3 * y) as u8, 60 * class])
    })
}

#[test]
fn rgb_folder_is_resized_centre_cropped_and_split_by_seed() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("rgb");
    for c in 0..3u8 {
        let d = root.join("train").join(format!("class-{c}"));
        std::fs::create_dir_all(&d).unwrap();
        for i in 0..20u32 {
            match i % 4 {
                // Already 64 high, wider: only the crop acts (8 columns off each side).
                0 => coded_rgb(80, 64, c)
                    .save(d.join(format!("{i:02}.png")))
                    .unwrap(),
                1 => coded_rgb(64, 64, c)
                    .save(d.join(format!("{i:02}.PNG")))
                    .unwrap(),
                2 => coded_rgb(128, 160, c)
                    .save(d.join(format!("{i:02}.jpg")))
                    .unwrap(),
                // Grayscale files in an RGB dataset are replicated to three channels.
                _ => image::GrayImage::from_pixel(50, 40, image::Luma([90 + c]))
                    .save(d.join(format!("{i:02}.jpeg")))
                    .unwrap(),
            }
        }
        std::fs::write(d.join("notes.txt"), "not an image: ignored").unwrap();
    }
    let opts = |seed| FolderOptions {
        channels: 3,
        image_size: Some(64),
        split_seed: seed,
        cache_dir: Some(tmp.path().join("cache")),
        ..Default::default()
    };
    let ds = Dataset::load_with("folder", &root, &opts(7)).unwrap();
    assert_eq!(ds.classes, 3);
    assert_eq!(ds.train.images.size(), [54, 3, 64, 64]);
    assert_eq!(ds.test.images.size(), [6, 3, 64, 64]);
    let count =
        |s: &nago_train::data::Split, c: i64| s.labels.eq(c).sum(Kind::Int64).int64_value(&[]);
    for c in 0..3 {
        assert_eq!((count(&ds.train, c), count(&ds.test, c)), (18, 2));
    }
    // The 80×64 PNG of class 0 (file 00): red = 3·(x + 8) after the centre crop.
    let again = Dataset::load_with("folder", &root, &opts(7)).unwrap();
    assert!(again.train.images.equal(&ds.train.images));
    assert!(again.test.labels.equal(&ds.test.labels));
    let all = Tensor::cat(&[&ds.train.images, &ds.test.images], 0);
    let first_col_red: Vec<i64> = (0..all.size()[0])
        .map(|i| all.int64_value(&[i, 0, 10, 0]))
        .collect();
    assert!(
        first_col_red.contains(&24),
        "no 80×64 image cropped at x = 8: {first_col_red:?}"
    );
    // A grayscale image: three equal channels.
    let gray = (0..all.size()[0]).find(|&i| {
        let p = |k| all.int64_value(&[i, k, 5, 5]);
        p(0) == p(1) && p(1) == p(2) && (90..=92).contains(&p(0))
    });
    assert!(gray.is_some(), "no replicated grayscale image");
    // Another seed holds out other images (the split comes from the study, not the files).
    let other = Dataset::load_with("folder", &root, &opts(8)).unwrap();
    assert!(!other.test.images.equal(&ds.test.images));
    // Grayscale reading of the same folder: one channel.
    let g = Dataset::load_with(
        "folder",
        &root,
        &FolderOptions {
            channels: 1,
            ..opts(7)
        },
    )
    .unwrap();
    assert_eq!(g.train.images.size(), [54, 1, 64, 64]);
}

#[test]
fn an_edited_folder_is_decoded_again() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("f");
    for c in 0..2u8 {
        let d = root.join("train").join(format!("{c}"));
        std::fs::create_dir_all(&d).unwrap();
        for i in 0..3 {
            image::GrayImage::from_pixel(8, 8, image::Luma([10 * c + i]))
                .save(d.join(format!("{i}.png")))
                .unwrap();
        }
    }
    let opts = FolderOptions {
        channels: 1,
        cache_dir: Some(tmp.path().join("cache")),
        ..Default::default()
    };
    let ds = Dataset::load_with("folder", &root, &opts).unwrap();
    assert_eq!(ds.train.len() + ds.test.len(), 6);
    // A new image in class 1: a new listing, so a second cache and the new image in the data.
    image::GrayImage::from_pixel(8, 8, image::Luma([200]))
        .save(root.join("train/1/9.png"))
        .unwrap();
    let ds = Dataset::load_with("folder", &root, &opts).unwrap();
    let n = ds.train.len() + ds.test.len();
    assert_eq!(n, 7);
    let all = Tensor::cat(&[&ds.train.images, &ds.test.images], 0);
    assert_eq!(all.max().int64_value(&[]), 200);
    assert_eq!(tree(&tmp.path().join("cache")).len(), 2);
}

#[test]
fn bad_folders_name_the_path_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let make = |name: &str| -> std::path::PathBuf {
        let root = tmp.path().join(name);
        for c in ["a", "b"] {
            let d = root.join("train").join(c);
            std::fs::create_dir_all(&d).unwrap();
            for i in 0..2 {
                image::GrayImage::from_pixel(12, 12, image::Luma([40]))
                    .save(d.join(format!("{i}.png")))
                    .unwrap();
            }
        }
        root
    };
    let opts = FolderOptions {
        channels: 1,
        ..Default::default()
    };
    let expect_err = |root: &Path, opts: &FolderOptions, names: &Path, says: &str| {
        let before = tree(root);
        let e = Dataset::load_with("folder", root, opts)
            .unwrap_err()
            .to_string();
        assert!(e.contains(&names.display().to_string()), "{e}");
        assert!(e.contains(says), "{e}");
        // Nothing written: no cache beside the data, nothing else.
        assert_eq!(tree(root), before, "{e}");
    };
    // An unreadable image (not a PNG inside).
    let r = make("corrupt");
    std::fs::write(r.join("train/b/1.png"), b"this is not a png").unwrap();
    expect_err(&r, &opts, &r.join("train/b/1.png"), "not a readable image");
    // A truncated PNG.
    let r = make("truncated");
    let bytes = std::fs::read(r.join("train/a/0.png")).unwrap();
    std::fs::write(r.join("train/a/0.png"), &bytes[..bytes.len() / 2]).unwrap();
    expect_err(&r, &opts, &r.join("train/a/0.png"), "not a readable image");
    // An empty class folder.
    let r = make("empty-class");
    std::fs::create_dir_all(r.join("train/c")).unwrap();
    std::fs::write(r.join("train/c/readme.md"), "no images here").unwrap();
    expect_err(&r, &opts, &r.join("train/c"), "holds no image");
    // Mixed sizes without image_size; with it, the same folder reads.
    let r = make("mixed");
    image::GrayImage::from_pixel(16, 12, image::Luma([40]))
        .save(r.join("train/b/7.png"))
        .unwrap();
    expect_err(&r, &opts, &r.join("train/b/7.png"), "dataset.image_size");
    let resized = FolderOptions {
        image_size: Some(12),
        cache_dir: Some(tmp.path().join("cache")),
        ..opts.clone()
    };
    assert_eq!(
        Dataset::load_with("folder", &r, &resized)
            .unwrap()
            .image_shape(),
        (1, 12, 12)
    );
    // A test class that training does not have; no train/ at all.
    let r = make("test-class");
    std::fs::create_dir_all(r.join("test/z")).unwrap();
    image::GrayImage::from_pixel(12, 12, image::Luma([1]))
        .save(r.join("test/z/0.png"))
        .unwrap();
    expect_err(&r, &opts, &r.join("test/z"), "has no folder under train/");
    let r = tmp.path().join("no-train");
    std::fs::create_dir_all(r.join("images")).unwrap();
    expect_err(&r, &opts, &r.join("train"), "train/<class>");
}
