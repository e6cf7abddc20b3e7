//! Datasets: inputs as an `(n, features)` (or `(n, c, h, w)`) tensor and their targets.

pub mod fit;
pub mod images;
pub mod mnist;
pub mod names;
pub mod play;
pub mod playground;
pub mod seq;

use crate::tensor::{self, Tensor};

/// Targets for a dataset's rows.
#[derive(Clone, Debug)]
pub enum Targets {
    /// Regression or binary targets, `(n, outputs)`.
    Values(Tensor),
    /// One class index per row.
    Classes(Vec<usize>),
}

#[derive(Clone, Debug)]
pub struct Dataset {
    pub x: Tensor,
    pub y: Targets,
}

/// Where a trainer draws its mini-batches from: a dataset in memory, or images kept as bytes
/// and converted per batch (MNIST as f32 would take 188 MB).
pub trait Source {
    fn len(&self) -> usize;
    /// Class indices (true) or value targets (false).
    fn has_classes(&self) -> bool;
    /// Copies the rows `indices` into `x` (and `y`/`classes`), reusing their allocations.
    fn gather(&self, indices: &[usize], x: &mut Tensor, y: &mut Tensor, classes: &mut Vec<usize>);
    /// [`Source::gather`] with only the first `rows` rows of `x` written (its shape is the whole
    /// batch's, the rest stale): the others are gathered by helpers ([`Source::shared_rows`]).
    /// By default every row is written.
    fn gather_first(&self, indices: &[usize], _rows: usize, x: &mut Tensor, y: &mut Tensor, classes: &mut Vec<usize>) {
        self.gather(indices, x, y, classes)
    }
    /// Where helper threads can read rows of `x` themselves, the same bits as `gather` (None: the
    /// caller hands them theirs).
    fn shared_rows(&self) -> Option<crate::parallel::SharedRows> {
        None
    }
    /// For sequence targets: fills `mask` (one entry per class of `gather`, true on real steps)
    /// and returns true; sources without padding return false.
    fn mask(&self, _indices: &[usize], _mask: &mut Vec<bool>) -> bool {
        false
    }
}

impl Source for Dataset {
    fn len(&self) -> usize {
        Dataset::len(self)
    }

    fn has_classes(&self) -> bool {
        matches!(self.y, Targets::Classes(_))
    }

    fn gather(&self, indices: &[usize], x: &mut Tensor, y: &mut Tensor, classes: &mut Vec<usize>) {
        Dataset::gather(self, indices, x, y, classes)
    }
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.x.shape()[0]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies the rows `indices` into `x` (and `y`/`classes`), reusing their allocations.
    pub fn gather(&self, indices: &[usize], x: &mut Tensor, y: &mut Tensor, classes: &mut Vec<usize>) {
        let row = self.x.len() / self.x.shape()[0].max(1);
        // Reallocate only when the batch shape changes (no allocation in the hot loop).
        if x.shape().first() != Some(&indices.len()) || !tensor::same(&x.shape()[1.min(x.ndim())..], &self.x.shape()[1..]) {
            let mut shape = self.x.shape().to_vec();
            shape[0] = indices.len();
            *x = tensor::zeros(&shape);
        }
        let (src, dst) = (tensor::slice(&self.x), tensor::slice_mut(x));
        for (r, &i) in indices.iter().enumerate() {
            dst[r * row..(r + 1) * row].copy_from_slice(&src[i * row..(i + 1) * row]);
        }
        match &self.y {
            Targets::Values(t) => {
                let k = t.shape()[1];
                tensor::resize(y, &[indices.len(), k]);
                let (src, dst) = (tensor::slice(t), tensor::slice_mut(y));
                for (r, &i) in indices.iter().enumerate() {
                    dst[r * k..(r + 1) * k].copy_from_slice(&src[i * k..(i + 1) * k]);
                }
            }
            Targets::Classes(c) => {
                classes.clear();
                classes.extend(indices.iter().map(|&i| c[i]));
            }
        }
    }
}

/// Per-feature standardisation `z = (v − mean) / std`, fitted on training data only.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scaler {
    pub mean: f32,
    pub std: f32,
}

impl Scaler {
    pub const IDENTITY: Scaler = Scaler { mean: 0.0, std: 1.0 };

    pub fn fit(values: &[f32]) -> Scaler {
        let n = values.len().max(1) as f64;
        let mean = values.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = values.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        let std = var.sqrt();
        Scaler { mean: mean as f32, std: if std > 1e-12 { std as f32 } else { 1.0 } }
    }

    pub fn apply(&self, v: f32) -> f32 {
        (v - self.mean) / self.std
    }

    pub fn invert(&self, z: f32) -> f32 {
        z * self.std + self.mean
    }
}
