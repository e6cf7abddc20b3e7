//! MNIST-style datasets from gzipped IDX files (the format MNIST and Fashion-MNIST ship in):
//! images as `(n, 1, 28, 28)` f32 in [0, 1], labels as class indices.

use flate2::read::GzDecoder;
use std::io::Read;

/// Raw images (u8, row-major) and labels.
#[derive(Clone, Debug)]
pub struct Digits {
    pub rows: usize,
    pub cols: usize,
    pub images: Vec<u8>,
    pub labels: Vec<u8>,
}

impl Digits {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Image `i`'s pixels scaled to [0, 1].
    pub fn image(&self, i: usize) -> impl Iterator<Item = f32> + '_ {
        let size = self.rows * self.cols;
        self.images[i * size..(i + 1) * size].iter().map(|&p| p as f32 / 255.0)
    }

    /// Image `i`'s bytes (0–255), row by row.
    pub fn bytes(&self, i: usize) -> &[u8] {
        let size = self.rows * self.cols;
        &self.images[i * size..(i + 1) * size]
    }
}

/// The largest IDX file accepted, unpacked (MNIST's training images are 47 MB): a file that
/// claims or inflates to more is refused instead of exhausting memory.
pub const MAX_IDX_BYTES: usize = 64 << 20;

fn gunzip(bytes: &[u8]) -> Result<Vec<u8>, String> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        // One byte past the cap tells "too large" from "exactly at the cap".
        GzDecoder::new(bytes).take(MAX_IDX_BYTES as u64 + 1).read_to_end(&mut out).map_err(|e| format!("gzip: {e}"))?;
        if out.len() > MAX_IDX_BYTES {
            return Err(format!("a data file unpacks to more than {} MB", MAX_IDX_BYTES >> 20));
        }
        Ok(out)
    } else if bytes.len() > MAX_IDX_BYTES {
        Err(format!("a data file is larger than {} MB", MAX_IDX_BYTES >> 20))
    } else {
        Ok(bytes.to_vec())
    }
}

fn be32(b: &[u8], at: usize) -> Result<usize, String> {
    b.get(at..at + 4).map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as usize).ok_or_else(|| "truncated IDX header".to_string())
}

/// Parses an images file (magic 2051) and a labels file (magic 2049), gzipped or not.
pub fn parse(images: &[u8], labels: &[u8]) -> Result<Digits, String> {
    let (im, lb) = (gunzip(images)?, gunzip(labels)?);
    if be32(&im, 0)? != 2051 || be32(&lb, 0)? != 2049 {
        return Err("not IDX image/label files (bad magic numbers)".into());
    }
    let (n, rows, cols) = (be32(&im, 4)?, be32(&im, 8)?, be32(&im, 12)?);
    if be32(&lb, 4)? != n {
        return Err(format!("{n} images but {} labels", be32(&lb, 4)?));
    }
    if n == 0 || rows == 0 || cols == 0 {
        return Err("an IDX file with no images".into());
    }
    // The header's product is checked, not trusted: it must not overflow and must match the data.
    let pixels = n.checked_mul(rows).and_then(|v| v.checked_mul(cols)).and_then(|v| v.checked_add(16));
    if pixels != Some(im.len()) || lb.len() != 8 + n {
        return Err("IDX file sizes do not match their headers".into());
    }
    Ok(Digits { rows, cols, images: im[16..].to_vec(), labels: lb[8..].to_vec() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn header(magic: u32, dims: &[u32]) -> Vec<u8> {
        let mut h = magic.to_be_bytes().to_vec();
        dims.iter().for_each(|d| h.extend(d.to_be_bytes()));
        h
    }

    #[test]
    fn hostile_headers_are_refused_not_trusted() {
        let labels = |n: u32| [header(2049, &[n]), vec![0; n as usize]].concat();
        // A size product that overflows, an empty set, a truncated body, a header only.
        let huge = header(2051, &[u32::MAX, u32::MAX, u32::MAX]);
        assert!(parse(&huge, &labels(0)).is_err());
        assert!(parse(&header(2051, &[0, 28, 28]), &labels(0)).unwrap_err().contains("no images"));
        let short = [header(2051, &[2, 2, 2]), vec![0; 7]].concat();
        assert!(parse(&short, &labels(2)).unwrap_err().contains("sizes"));
        assert!(parse(&[0x1f, 0x8b, 1, 2], &labels(1)).unwrap_err().contains("gzip"));
        assert!(parse(&[], &[]).unwrap_err().contains("truncated"));
        let ok = [header(2051, &[2, 2, 2]), vec![7; 8]].concat();
        assert_eq!(parse(&ok, &labels(2)).unwrap().len(), 2);
    }

    fn dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../static/data/mnist")
    }

    fn load(split: &str) -> Digits {
        let read = |name: String| std::fs::read(dir().join(name)).expect("static/data/mnist ships the IDX files");
        parse(&read(format!("{split}-images-idx3-ubyte.gz")), &read(format!("{split}-labels-idx1-ubyte.gz"))).unwrap()
    }

    #[test]
    fn mnist_loads_with_its_known_label_counts_and_first_labels() {
        let train = load("train");
        assert_eq!((train.len(), train.rows, train.cols), (60_000, 28, 28));
        let mut counts = [0usize; 10];
        train.labels.iter().for_each(|&l| counts[l as usize] += 1);
        assert_eq!(counts, [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]);
        assert_eq!(&train.labels[..10], &[5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
        let mean = train.images.iter().map(|&p| p as f64).sum::<f64>() / train.images.len() as f64 / 255.0;
        assert!((mean - 0.1307).abs() < 1e-3, "pixel mean {mean}");
        let test = load("t10k");
        assert_eq!(test.len(), 10_000);
        assert_eq!(&test.labels[..10], &[7, 2, 1, 0, 4, 1, 4, 9, 5, 9]);
        let mut counts = [0usize; 10];
        test.labels.iter().for_each(|&l| counts[l as usize] += 1);
        assert_eq!(counts, [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);
    }

    #[test]
    fn malformed_files_are_rejected() {
        assert!(parse(&[0, 0, 8, 3], &[0, 0, 8, 1]).is_err());
        let mut im = vec![0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3, 4];
        let lb = vec![0, 0, 8, 1, 0, 0, 0, 1, 7];
        assert_eq!(parse(&im, &lb).unwrap().labels, vec![7]);
        im.pop();
        assert!(parse(&im, &lb).is_err());
    }
}
