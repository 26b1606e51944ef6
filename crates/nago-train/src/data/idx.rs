//! IDX files (the MNIST / Fashion-MNIST format), plain or gzipped.

use super::{DataError, Dataset, Split};
use std::io::Read;
use std::path::{Path, PathBuf};

/// An IDX array of unsigned bytes.
#[derive(Debug, Clone)]
pub struct IdxArray {
    /// Dimensions.
    pub dims: Vec<usize>,
    /// The data, row-major.
    pub data: Vec<u8>,
}

/// Reads an IDX file (`.gz` is decompressed). Only the unsigned-byte type (0x08) is
/// supported, which is what image and label files use.
pub fn read_idx(path: &Path) -> Result<IdxArray, DataError> {
    let raw = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| DataError::format(path, format!("not a valid gzip file: {e}")))?;
        out
    } else {
        raw
    };
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err(DataError::format(
            path,
            "not an IDX file (expected the magic number 0x0000TTDD)",
        ));
    }
    if bytes[2] != 0x08 {
        return Err(DataError::format(
            path,
            format!(
                "IDX element type 0x{:02x} is not supported (expected 0x08, unsigned bytes)",
                bytes[2]
            ),
        ));
    }
    let nd = bytes[3] as usize;
    if nd == 0 || bytes.len() < 4 + 4 * nd {
        return Err(DataError::format(path, "truncated IDX header"));
    }
    let dims: Vec<usize> = (0..nd)
        .map(|i| {
            let b = &bytes[4 + 4 * i..8 + 4 * i];
            u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
        })
        .collect();
    let n: usize = dims.iter().product();
    let body = &bytes[4 + 4 * nd..];
    if body.len() < n {
        return Err(DataError::format(
            path,
            format!(
                "truncated: dimensions {dims:?} need {n} bytes of data, found {}",
                body.len()
            ),
        ));
    }
    if body.len() > n {
        return Err(DataError::format(
            path,
            format!(
                "{} bytes of data beyond what dimensions {dims:?} describe",
                body.len() - n
            ),
        ));
    }
    Ok(IdxArray {
        dims,
        data: body.to_vec(),
    })
}

fn find(dir: &Path, stem: &str) -> Result<PathBuf, DataError> {
    for cand in [format!("{stem}.gz"), stem.to_string()] {
        let p = dir.join(&cand);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(DataError::Missing {
        path: dir.join(format!("{stem}.gz")),
        message: format!("expected `{stem}` or `{stem}.gz` in this directory"),
    })
}

fn split(dir: &Path, prefix: &str) -> Result<(Split, i64), DataError> {
    let ip = find(dir, &format!("{prefix}-images-idx3-ubyte"))?;
    let lp = find(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
    let im = read_idx(&ip)?;
    let lb = read_idx(&lp)?;
    let (n, c, h, w, chw_last) = match im.dims[..] {
        [n, h, w] => (n, 1, h, w, false),
        [n, h, w, c] => (n, c, h, w, true),
        _ => {
            return Err(DataError::format(
                &ip,
                format!(
                    "expected dimensions [N, H, W] or [N, H, W, C], found {:?}",
                    im.dims
                ),
            ))
        }
    };
    if lb.dims.len() != 1 || lb.dims[0] != n {
        return Err(DataError::format(
            &lp,
            format!(
                "expected {n} labels (one per image of {}), found dimensions {:?}",
                ip.display(),
                lb.dims
            ),
        ));
    }
    let labels: Vec<i64> = lb.data.iter().map(|&l| l as i64).collect();
    let max = labels.iter().copied().max().unwrap_or(0);
    let mut s = Split::from_raw(
        &im.data,
        &labels,
        if chw_last { 1 } else { c },
        h,
        if chw_last { w * c } else { w },
    );
    if chw_last {
        s.images = s
            .images
            .view([n as i64, h as i64, w as i64, c as i64])
            .permute([0, 3, 1, 2])
            .contiguous();
    }
    Ok((s, max))
}

/// Reads `train-{images-idx3,labels-idx1}-ubyte[.gz]` and `t10k-...` from `dir`.
pub fn read_idx_dir(dir: &Path, name: &str) -> Result<Dataset, DataError> {
    let (train, m1) = split(dir, "train")?;
    let (test, m2) = split(dir, "t10k")?;
    Ok(Dataset {
        name: name.to_string(),
        train,
        test,
        classes: (m1.max(m2) + 1) as u32,
    })
}
