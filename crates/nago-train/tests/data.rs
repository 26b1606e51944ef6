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
