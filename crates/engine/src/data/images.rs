//! Image datasets for the CNN lab: MNIST and Fashion-MNIST, kept as bytes and standardised per
//! mini-batch. Files are read by the caller (the CLI from disk, the worker with `fetch`), so the
//! engine stays free of I/O and web code.

use super::mnist::{self, Digits};
use super::Source;
use crate::tensor::{self, Tensor};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageSet {
    #[default]
    Mnist,
    Fashion,
}

impl ImageSet {
    pub const ALL: [ImageSet; 2] = [ImageSet::Mnist, ImageSet::Fashion];

    /// The folder under `static/data/` (and the served `data/`).
    pub fn dir(self) -> &'static str {
        match self {
            ImageSet::Mnist => "mnist",
            ImageSet::Fashion => "fashion-mnist",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ImageSet::Mnist => "MNIST digits",
            ImageSet::Fashion => "Fashion-MNIST",
        }
    }

    /// The four IDX files: train images, train labels, test images, test labels.
    pub fn files(self) -> [&'static str; 4] {
        ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    }

    pub fn classes(self) -> [&'static str; 10] {
        match self {
            ImageSet::Mnist => ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
            ImageSet::Fashion => ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"],
        }
    }
}

/// A dataset's train and test split, with the pixel mean and spread of the training images
/// (inputs are standardised with them: `(p/255 − mean) / std`).
#[derive(Debug)]
pub struct ImagePair {
    pub set: ImageSet,
    pub train: Digits,
    pub test: Digits,
    pub mean: f32,
    pub std: f32,
}

impl ImagePair {
    /// Parses the four files in [`ImageSet::files`] order.
    pub fn parse(set: ImageSet, files: [&[u8]; 4]) -> Result<ImagePair, String> {
        let train = mnist::parse(files[0], files[1]).map_err(|e| format!("{} training set: {e}", set.label()))?;
        let test = mnist::parse(files[2], files[3]).map_err(|e| format!("{} test set: {e}", set.label()))?;
        if (train.rows, train.cols) != (28, 28) || (test.rows, test.cols) != (28, 28) {
            return Err(format!("{}: expected 28×28 images", set.label()));
        }
        if train.labels.iter().chain(&test.labels).any(|&l| l > 9) {
            return Err(format!("{}: labels must be 0–9", set.label()));
        }
        let n = train.images.len().max(1) as f64;
        let mean = train.images.iter().map(|&p| p as f64).sum::<f64>() / n / 255.0;
        let var = train.images.iter().map(|&p| (p as f64 / 255.0 - mean).powi(2)).sum::<f64>() / n;
        Ok(ImagePair { set, train, test, mean: mean as f32, std: var.sqrt().max(1e-6) as f32 })
    }

    /// Reads the files from `dir/<set.dir()>/` (the CLI and the tests).
    pub fn load_dir(set: ImageSet, dir: &std::path::Path) -> Result<ImagePair, String> {
        let read = |name: &str| {
            let path = dir.join(set.dir()).join(name);
            std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))
        };
        let f = set.files();
        let (a, b, c, d) = (read(f[0])?, read(f[1])?, read(f[2])?, read(f[3])?);
        ImagePair::parse(set, [&a, &b, &c, &d])
    }

    /// The input scaling: `(mean, std)` when standardising, else `(0, 1)` (pixels in [0, 1]).
    pub fn scaling(&self, standardise: bool) -> (f32, f32) {
        if standardise {
            (self.mean, self.std)
        } else {
            (0.0, 1.0)
        }
    }

    /// The training split as a mini-batch source with the given scaling.
    pub fn train_source(&self, scaling: (f32, f32)) -> Images<'_> {
        Images { digits: &self.train, scaling, shared: None }
    }

    /// [`ImagePair::train_source`] whose rows helper threads can gather themselves.
    pub fn shared_train_source(self: &Arc<Self>, scaling: (f32, f32)) -> Images<'_> {
        Images { digits: &self.train, scaling, shared: Some(self) }
    }

    pub fn test_source(&self, scaling: (f32, f32)) -> Images<'_> {
        Images { digits: &self.test, scaling, shared: None }
    }

    /// The rows of the training split for helpers ([`Source::shared_rows`]).
    pub fn shared_train_rows(self: &Arc<Self>, scaling: (f32, f32)) -> crate::parallel::SharedRows {
        crate::parallel::SharedRows { pixels: self.clone(), scaling }
    }
}

/// The training split's images (helpers gather their rows of a mini-batch from it).
impl crate::parallel::PixelRows for ImagePair {
    fn fill(&self, indices: &[usize], scaling: (f32, f32), out: &mut [f32]) {
        fill_images(&self.train, indices, scaling, out);
    }
}

/// Rows `indices` of `digits`, scaled, into `out` (every gather of images goes through here).
pub fn fill_images(digits: &Digits, indices: &[usize], scaling: (f32, f32), out: &mut [f32]) {
    let table = crate::math::PixelTable::new(scaling);
    table.fill_rows(indices.len(), digits.rows * digits.cols, |r| digits.bytes(indices[r]), out);
}

/// Loaded image datasets, by name (the worker loads them on demand).
#[derive(Clone, Debug, Default)]
pub struct Assets {
    pub images: Vec<Arc<ImagePair>>,
    pub texts: Vec<Arc<super::names::TextFile>>,
}

impl Assets {
    pub fn get(&self, set: ImageSet) -> Option<Arc<ImagePair>> {
        self.images.iter().find(|p| p.set == set).cloned()
    }

    pub fn insert(&mut self, pair: ImagePair) {
        self.images.retain(|p| p.set != pair.set);
        self.images.push(Arc::new(pair));
    }

    pub fn text(&self, set: super::names::TextSet) -> Option<Arc<super::names::TextFile>> {
        self.texts.iter().find(|t| t.set == set).cloned()
    }

    pub fn insert_text(&mut self, file: super::names::TextFile) {
        self.texts.retain(|t| t.set != file.set);
        self.texts.push(Arc::new(file));
    }
}

/// Writes `(p − mean) / std` for each pixel value `p` in [0, 1].
pub fn scale_into(pixels: impl Iterator<Item = f32>, (mean, std): (f32, f32), out: &mut [f32]) {
    for (o, p) in out.iter_mut().zip(pixels) {
        *o = (p - mean) / std;
    }
}

/// One split as a mini-batch source: `(n, 1, 28, 28)` scaled pixels and class labels.
pub struct Images<'a> {
    pub digits: &'a Digits,
    pub scaling: (f32, f32),
    /// The pair `digits` is the training split of, when helpers may gather from it.
    pub shared: Option<&'a Arc<ImagePair>>,
}

impl Source for Images<'_> {
    fn len(&self) -> usize {
        self.digits.len()
    }

    fn has_classes(&self) -> bool {
        true
    }

    fn gather(&self, indices: &[usize], x: &mut Tensor, y: &mut Tensor, classes: &mut Vec<usize>) {
        self.gather_first(indices, indices.len(), x, y, classes)
    }

    fn gather_first(&self, indices: &[usize], rows: usize, x: &mut Tensor, _y: &mut Tensor, classes: &mut Vec<usize>) {
        let size = self.digits.rows * self.digits.cols;
        tensor::resize(x, &[indices.len(), 1, self.digits.rows, self.digits.cols]);
        let rows = rows.min(indices.len());
        fill_images(self.digits, &indices[..rows], self.scaling, &mut tensor::slice_mut(x)[..rows * size]);
        classes.clear();
        classes.extend(indices.iter().map(|&i| self.digits.labels[i] as usize));
    }

    fn shared_rows(&self) -> Option<crate::parallel::SharedRows> {
        self.shared.map(|pair| pair.shared_train_rows(self.scaling))
    }
}

/// Places a free-hand drawing the way MNIST's digits were prepared: the ink's bounding box is
/// scaled to fit 20×20 (keeping its aspect ratio), then put in a 28×28 frame so that its centre
/// of mass sits at the centre. `canvas` is `w × h` ink values in [0, 1]; returns 784 values in [0, 1]
/// (all zero for an empty drawing).
pub fn center_drawing(canvas: &[f32], w: usize, h: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; 28 * 28];
    let ink = |x: usize, y: usize| canvas.get(y * w + x).copied().unwrap_or(0.0);
    let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
    for y in 0..h {
        for x in 0..w {
            if ink(x, y) > 0.05 {
                (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
            }
        }
    }
    if x0 == usize::MAX {
        return out;
    }
    let (bw, bh) = ((x1 - x0 + 1) as f32, (y1 - y0 + 1) as f32);
    let scale = 20.0 / bw.max(bh);
    // Box-filter the box into a (sw × sh) image: each target pixel averages the source pixels it covers.
    let (sw, sh) = (((bw * scale).round() as usize).clamp(1, 20), ((bh * scale).round() as usize).clamp(1, 20));
    let mut small = vec![0.0f32; sw * sh];
    for ty in 0..sh {
        for tx in 0..sw {
            let (fx0, fx1) = (x0 as f32 + tx as f32 * bw / sw as f32, x0 as f32 + (tx + 1) as f32 * bw / sw as f32);
            let (fy0, fy1) = (y0 as f32 + ty as f32 * bh / sh as f32, y0 as f32 + (ty + 1) as f32 * bh / sh as f32);
            let (mut sum, mut count) = (0.0f32, 0.0f32);
            for sy in fy0.floor() as usize..(fy1.ceil() as usize).min(h) {
                for sx in fx0.floor() as usize..(fx1.ceil() as usize).min(w) {
                    sum += ink(sx, sy);
                    count += 1.0;
                }
            }
            small[ty * sw + tx] = if count > 0.0 { (sum / count).min(1.0) } else { 0.0 };
        }
    }
    // Centre of mass of the scaled drawing, then shift it to (14, 14).
    let (mut mx, mut my, mut m) = (0.0f32, 0.0f32, 0.0f32);
    for y in 0..sh {
        for x in 0..sw {
            let v = small[y * sw + x];
            (mx, my, m) = (mx + v * x as f32, my + v * y as f32, m + v);
        }
    }
    let (cx, cy) = if m > 0.0 { (mx / m, my / m) } else { (sw as f32 / 2.0, sh as f32 / 2.0) };
    let (ox, oy) = ((14.0 - cx - 0.5).round() as isize, (14.0 - cy - 0.5).round() as isize);
    for y in 0..sh {
        for x in 0..sw {
            let (tx, ty) = (x as isize + ox, y as isize + oy);
            if (0..28).contains(&tx) && (0..28).contains(&ty) {
                out[ty as usize * 28 + tx as usize] = small[y * sw + x];
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drawing_is_scaled_to_20_pixels_and_centred_by_mass() {
        // A 10-pixel-wide vertical bar in the top-left corner of a 200×200 canvas.
        let (w, h) = (200, 200);
        let mut canvas = vec![0.0; w * h];
        for y in 10..110 {
            for x in 10..20 {
                canvas[y * w + x] = 1.0;
            }
        }
        let out = center_drawing(&canvas, w, h);
        let rows: Vec<usize> = (0..28).filter(|&y| (0..28).any(|x| out[y * 28 + x] > 0.5)).collect();
        let cols: Vec<usize> = (0..28).filter(|&x| (0..28).any(|y| out[y * 28 + x] > 0.5)).collect();
        assert_eq!(rows.len(), 20, "height scaled to 20");
        assert_eq!(cols.len(), 2, "width scaled by the same factor");
        let (mx, my, m) = (0..784).fold((0.0, 0.0, 0.0), |(a, b, c), i| {
            (a + out[i] * (i % 28) as f32, b + out[i] * (i / 28) as f32, c + out[i])
        });
        assert!((mx / m - 13.5).abs() <= 1.0 && (my / m - 13.5).abs() <= 1.0, "centre of mass ({}, {})", mx / m, my / m);
        assert!(center_drawing(&vec![0.0; 100], 10, 10).iter().all(|&v| v == 0.0));
    }

    #[test]
    fn fashion_mnist_loads_with_six_thousand_images_per_class() {
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../static/data");
        let pair = ImagePair::load_dir(ImageSet::Fashion, &dir).expect("static/data ships Fashion-MNIST");
        assert_eq!((pair.train.len(), pair.test.len()), (60_000, 10_000));
        for class in 0..10u8 {
            assert_eq!(pair.train.labels.iter().filter(|&&l| l == class).count(), 6_000);
            assert_eq!(pair.test.labels.iter().filter(|&&l| l == class).count(), 1_000);
        }
        assert!((pair.mean - 0.286).abs() < 2e-3 && (pair.std - 0.353).abs() < 2e-3, "{} {}", pair.mean, pair.std);
        let mnist = ImagePair::load_dir(ImageSet::Mnist, &dir).unwrap();
        assert!((mnist.mean - 0.1307).abs() < 1e-3 && (mnist.std - 0.3081).abs() < 1e-3);
    }

    #[test]
    fn image_sources_standardise_pixels_and_give_labels() {
        let digits = Digits { rows: 28, cols: 28, images: (0..2 * 784).map(|i| (i % 256) as u8).collect(), labels: vec![3, 7] };
        let pair = ImagePair { set: ImageSet::Mnist, train: digits.clone(), test: digits, mean: 0.5, std: 0.25 };
        let (mut x, mut y, mut c) = (tensor::zeros(&[0]), tensor::zeros(&[0]), Vec::new());
        pair.train_source(pair.scaling(true)).gather(&[1], &mut x, &mut y, &mut c);
        assert_eq!(x.shape(), &[1, 1, 28, 28]);
        assert_eq!(c, vec![7]);
        let first = (784 % 256) as f32 / 255.0;
        assert!((tensor::slice(&x)[0] - (first - 0.5) / 0.25).abs() < 1e-6);
    }
}
