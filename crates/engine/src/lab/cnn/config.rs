//! Lab 2's config: a CNN on MNIST or Fashion-MNIST. `model` picks a starting architecture (the
//! small CNN or LeNet-5); every layer stays editable through the list keys.
//!
//! Conv layer `i` has `filters[i]` filters of `kernel[i] × kernel[i]` with padding `pad[i]`, then
//! the activation, then a `pool[i] × pool[i]` pooling (stride = window; 0 or 1: none). Missing
//! list entries repeat the last one (`pad`: 0). Then flatten, the hidden `dense` layers with the
//! activation, and a dense layer to the 10 classes, trained with softmax cross-entropy.

use crate::data::images::ImageSet;
use crate::init::Init;
use crate::lab::budget::{self, Cost};
use crate::lab::params::{comma_list, LabParams, Notice, Training};
use crate::ops::{Activation, ActivationKind, Conv2d, ConvImpl, Dense, Flatten, Pool2d, PoolKind};
use crate::optim::{Hyper, OptimizerKind, Schedule};
use crate::rng::Rng;
use crate::sequential::Sequential;
use serde::{Deserialize, Serialize};

pub const MAX_CONV: usize = 4;
pub const MAX_FILTERS: usize = 64;
pub const MAX_DENSE: usize = 3;
pub const MAX_UNITS: usize = 1024;
/// Keeps a link from asking for a model that would freeze the tab.
pub const MAX_PARAMS: usize = 2_000_000;
pub const SIDE: usize = 28;
pub const CLASSES: usize = 10;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CnnModel {
    /// 6 filters 4×4, ReLU, max-pool 5×5, dense 150→10, Adam lr 0.01.
    #[default]
    Small,
    /// conv 5×5×6 pad 2, pool 2, conv 5×5×16, pool 2, dense 120, 84, 10.
    Lenet5,
}

impl CnnModel {
    pub const ALL: [CnnModel; 2] = [CnnModel::Small, CnnModel::Lenet5];

    pub fn label(self) -> &'static str {
        match self {
            CnnModel::Small => "Small CNN (1 conv)",
            CnnModel::Lenet5 => "LeNet-5 (2 conv)",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CnnConfig {
    pub model: CnnModel,
    pub data: ImageSet,
    #[serde(with = "comma_list")]
    pub filters: Vec<usize>,
    #[serde(with = "comma_list")]
    pub kernel: Vec<usize>,
    #[serde(with = "comma_list")]
    pub pad: Vec<usize>,
    #[serde(with = "comma_list")]
    pub pool: Vec<usize>,
    /// `max` or `avg`.
    pub pooling: PoolKind,
    /// Hidden dense layers between the convolutions and the output.
    #[serde(with = "comma_list")]
    pub dense: Vec<usize>,
    pub act: ActivationKind,
    pub opt: OptimizerKind,
    pub lr: f32,
    pub mom: f32,
    pub l2: f32,
    pub bs: usize,
    /// Learning-rate schedule over `period` steps (step: halve every period; cosine: anneal).
    pub sched: Schedule,
    pub period: u64,
    /// Standardise the pixels with the training set's mean and spread (else p/255 in [0, 1]).
    pub norm: bool,
    /// Which convolution trains the model: `im2col` (fast) or `naive` (the loops).
    pub conv: ConvImpl,
    /// Race the two convolutions on the current mini-batch about once a second while training.
    pub race: bool,
    /// Steps between two evaluations on the 10,000 test images.
    pub eval: u64,
    /// The test image whose feature maps are shown.
    pub probe: usize,
    /// Pause after this many epochs (0: never).
    pub epochs: u64,
    pub seed: u64,
    /// Pause at this step (0: never).
    pub stop: u64,
}

impl Default for CnnConfig {
    fn default() -> Self {
        CnnConfig::for_model(CnnModel::Small)
    }
}

impl CnnConfig {
    /// The model's architecture and training recipe.
    pub fn for_model(model: CnnModel) -> CnnConfig {
        let base = CnnConfig {
            model,
            data: ImageSet::Mnist,
            filters: vec![6],
            kernel: vec![4],
            pad: vec![0],
            pool: vec![5],
            pooling: PoolKind::Max,
            dense: vec![],
            act: ActivationKind::Relu,
            opt: OptimizerKind::Adam,
            lr: 0.01,
            mom: 0.9,
            // The recipe: Adam 0.01 annealed by a cosine over 3 epochs (5,625 steps of 32), with a
            // touch of weight decay — 97.75 % after 3 epochs on seed 1 (constant 0.01: ~96.9 %).
            l2: 0.0001,
            bs: 32,
            sched: Schedule::Cosine,
            period: 5625,
            norm: true,
            conv: ConvImpl::Im2col,
            race: true,
            eval: 500,
            probe: 0,
            // The recipe's length: the run pauses there (Play trains on, with a warm restart
            // of the cosine schedule).
            epochs: 3,
            seed: 1,
            stop: 0,
        };
        match model {
            CnnModel::Small => base,
            CnnModel::Lenet5 => CnnConfig {
                filters: vec![6, 16],
                kernel: vec![5, 5],
                pad: vec![2, 0],
                pool: vec![2, 2],
                dense: vec![120, 84],
                // Adam 0.002 annealed over 5 epochs (4,690 steps of 64): 99.1 % after 5 epochs.
                lr: 0.002,
                l2: 0.0,
                bs: 64,
                period: 4690,
                epochs: 5,
                ..base
            },
        }
    }

    /// The conv layers as (filters, kernel, pad, pool).
    pub fn convs(&self) -> Vec<(usize, usize, usize, usize)> {
        let pick = |v: &[usize], i: usize, fallback: usize| v.get(i).or(v.last()).copied().unwrap_or(fallback);
        (0..self.filters.len()).map(|i| (self.filters[i], pick(&self.kernel, i, 5), self.pad.get(i).copied().unwrap_or(0), pick(&self.pool, i, 1))).collect()
    }

    /// Image side after each conv layer and its pooling; `None` when a layer would have no output.
    /// The sides come from the ops' own shape rules (`Conv2d::out_side`, `Pool2d::out_side`).
    pub fn sides(&self) -> Option<Vec<(usize, usize)>> {
        let mut side = SIDE;
        let mut out = Vec::new();
        for (_, k, p, pool) in self.convs() {
            let conv = Conv2d::out_side(side, k, 1, p)?;
            let pooled = if pool > 1 { Pool2d::out_side(conv, pool, pool)? } else { conv };
            out.push((conv, pooled));
            side = pooled;
        }
        Some(out)
    }

    /// Inputs of the first dense layer.
    pub fn flat_size(&self) -> usize {
        let side = self.sides().and_then(|s| s.last().map(|l| l.1)).unwrap_or(SIDE);
        side * side * self.filters.last().copied().unwrap_or(1)
    }

    pub fn param_count(&self) -> usize {
        let mut c_in = 1;
        let mut n = 0;
        for (f, k, _, _) in self.convs() {
            n += f * c_in * k * k + f;
            c_in = f;
        }
        let mut width = self.flat_size();
        for &u in self.dense.iter().chain(&[CLASSES]) {
            n += width * u + u;
            width = u;
        }
        n
    }

    /// Forward FLOPs per image: the convolutions, and all layers; and the floats each image's
    /// activations take (conv and activation outputs, pooled maps, dense outputs).
    pub fn per_image(&self) -> (f64, f64, f64) {
        let (mut conv, mut activations, mut c_in) = (0.0, 0.0, 1.0);
        for ((f, k, _, pool), (side, pooled)) in self.convs().into_iter().zip(self.sides().unwrap_or_default()) {
            let maps = f as f64 * (side * side) as f64;
            conv += 2.0 * (k * k) as f64 * c_in * maps;
            activations += 2.0 * maps + if pool > 1 { f as f64 * (pooled * pooled) as f64 } else { 0.0 };
            c_in = f as f64;
        }
        let (dense, _, dense_activations) = budget::dense_stack(&[&[self.flat_size()][..], &self.dense, &[CLASSES]].concat());
        (conv, conv + dense, activations + dense_activations)
    }

    /// The work and memory of a step, a snapshot and an evaluation chunk (see `budget`). The
    /// test set is evaluated in chunks sized to the budget ([`CnnConfig::eval_chunk`]).
    pub fn cost(&self) -> Cost {
        let (_, forward, activations) = self.per_image();
        let params = self.param_count() as f64;
        let batch = self.bs as f64;
        Cost {
            step_flops: Cost::TRAIN_FACTOR * forward * batch + 10.0 * params,
            // A snapshot runs the probe image and summarises the batch's activations; evaluation
            // chunks are sized to their own budget.
            snapshot_flops: forward + Cost::PER_ACTIVATION * activations * batch,
            // Outputs and gradients of every layer for the batch, plus one evaluation chunk.
            bytes: budget::parameter_bytes(params) + 4.0 * activations * (3.0 * batch + self.eval_chunk() as f64),
        }
    }

    /// Test images per evaluation chunk: 1,000, fewer for a model whose forward pass is costly.
    pub fn eval_chunk(&self) -> usize {
        let forward = self.per_image().1.max(1.0);
        ((budget::EVAL_CHUNK_FLOPS / forward) as usize).clamp(1, 1000)
    }

    /// Images of the mini-batch the race runs: all of them unless the naive loops would take
    /// more than ~300 ms (they run at ~1.4 GFLOP/s in our wasm, ~15× slower than im2col).
    pub fn race_images(&self) -> usize {
        const RACE_CONV_FLOPS: f64 = 4e8;
        let conv = self.per_image().0.max(1.0);
        ((RACE_CONV_FLOPS / (Cost::TRAIN_FACTOR * conv)) as usize).clamp(1, self.bs)
    }

    pub fn hyper(&self) -> Hyper {
        Hyper { lr: self.lr, momentum: self.mom, l2: self.l2, l1: 0.0, clip: 0.0 }
    }

    /// The network, with weights from the seed (He init before ReLU-like activations, else Xavier).
    /// Taps: `conv k`, `conv k activation`, `pool k` (k from 1), `dense k`, `dense k activation`, `output`.
    pub fn build_model(&self, rng: &mut Rng) -> Sequential {
        let init = if matches!(self.act, ActivationKind::Relu | ActivationKind::Leaky) { Init::He } else { Init::Xavier };
        let mut b = Sequential::builder();
        let mut c_in = 1;
        for (i, (f, k, p, pool)) in self.convs().into_iter().enumerate() {
            let mut conv = Conv2d::new(c_in, f, k, 1, p, init, rng);
            conv.implementation = self.conv;
            b.push(conv).tap(format!("conv {}", i + 1));
            b.push(Activation::new(self.act, 0.01)).tap(format!("conv {} activation", i + 1));
            if pool > 1 {
                b.push(Pool2d::new(self.pooling, pool, pool)).tap(format!("pool {}", i + 1));
            }
            c_in = f;
        }
        b.push(Flatten::default());
        let mut width = self.flat_size();
        for (i, &u) in self.dense.iter().enumerate() {
            b.push(Dense::new(width, u, init, 0.0, rng)).tap(format!("dense {}", i + 1));
            b.push(Activation::new(self.act, 0.01)).tap(format!("dense {} activation", i + 1));
            width = u;
        }
        b.push(Dense::new(width, CLASSES, Init::Xavier, 0.0, rng)).tap("output");
        b.build()
    }
}

fn notice(key: &str, message: String) -> Notice {
    Notice { key: key.into(), message }
}

impl LabParams for CnnConfig {
    const LAB: &'static str = "cnn";
    const LIVE: &'static [&'static str] = &["lr", "mom", "l2", "bs", "opt", "sched", "period", "eval", "epochs", "stop", "race", "probe"];
    const STOP_KEYS: &'static [&'static str] = &["stop", "epochs"];

    fn seed(&self) -> u64 {
        self.seed
    }

    fn stop(&self) -> u64 {
        self.stop
    }

    fn training(&self) -> Training {
        Training { hyper: self.hyper(), batch_size: self.bs, optimizer: self.opt, schedule: self.sched, period: self.period }
    }

    /// `model` picks the starting architecture and recipe; the other keys edit it.
    fn base(pairs: &mut Vec<(String, String)>, notices: &mut Vec<Notice>) -> Self {
        let mut base = CnnConfig::default();
        if let Some((_, m)) = pairs.iter().rev().find(|(k, _)| k == "model") {
            match crate::lab::params::with_value(&base, "model", m) {
                Ok(c) => base = CnnConfig::for_model(c.model),
                Err(n) => notices.push(n),
            }
        }
        pairs.retain(|(k, _)| k != "model");
        base
    }

    fn check(&self) -> Result<(), Notice> {
        if self.filters.is_empty() || self.filters.len() > MAX_CONV || self.filters.iter().any(|&f| f == 0 || f > MAX_FILTERS) {
            return Err(notice("filters", format!("1 to {MAX_CONV} conv layers of 1 to {MAX_FILTERS} filters (e.g. 6,16)")));
        }
        if self.kernel.is_empty() || self.kernel.len() > MAX_CONV || self.kernel.iter().any(|&k| !(1..=9).contains(&k)) {
            return Err(notice("kernel", "kernel sizes from 1 to 9, one per conv layer (e.g. 5,5)".into()));
        }
        if self.pad.len() > MAX_CONV || self.pad.iter().any(|&p| p > 4) {
            return Err(notice("pad", "padding from 0 to 4, one per conv layer".into()));
        }
        if self.pool.len() > MAX_CONV || self.pool.iter().any(|&p| p > 7) {
            return Err(notice("pool", "pool windows from 0 (none) to 7, one per conv layer".into()));
        }
        if self.dense.len() > MAX_DENSE || self.dense.iter().any(|&u| u == 0 || u > MAX_UNITS) {
            return Err(notice("dense", format!("at most {MAX_DENSE} hidden dense layers of 1 to {MAX_UNITS} units")));
        }
        if self.sides().is_none() {
            return Err(notice("kernel", "the image shrinks to nothing: use smaller kernels or pools, or more padding".into()));
        }
        if self.param_count() > MAX_PARAMS {
            return Err(notice("filters", format!("the model would have {} parameters (at most {MAX_PARAMS})", self.param_count())));
        }
        if !(self.lr.is_finite() && self.lr > 0.0 && self.lr <= 10.0) {
            return Err(notice("lr", "lr must be a number in (0, 10]".into()));
        }
        if !(self.mom.is_finite() && (0.0..1.0).contains(&self.mom)) {
            return Err(notice("mom", "mom must be a number in [0, 1)".into()));
        }
        if !(self.l2.is_finite() && (0.0..=1.0).contains(&self.l2)) {
            return Err(notice("l2", "l2 must be a number in [0, 1]".into()));
        }
        if !(1..=1024).contains(&self.bs) {
            return Err(notice("bs", "bs must be a whole number from 1 to 1024".into()));
        }
        if !(1..=10_000_000).contains(&self.period) {
            return Err(notice("period", "period must be a whole number of steps from 1 to 10,000,000".into()));
        }
        if !(10..=1_000_000).contains(&self.eval) {
            return Err(notice("eval", "eval must be a number of steps from 10 to 1,000,000".into()));
        }
        if self.probe >= 10_000 {
            return Err(notice("probe", "probe must be a test image index from 0 to 9999".into()));
        }
        if self.epochs > 1000 {
            return Err(notice("epochs", "epochs must be from 0 (never stop) to 1000".into()));
        }
        let smaller_batch = CnnConfig { bs: 32, ..self.clone() };
        let blame = if self.bs > 32 && smaller_batch.cost().check(["", "", ""]).is_ok() { "bs" } else { "filters" };
        self.cost().check([blame, "filters", blame])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::{self, Mode};

    #[test]
    fn the_two_models_have_the_textbook_shapes() {
        let small = CnnConfig::for_model(CnnModel::Small);
        assert_eq!(small.sides(), Some(vec![(25, 5)]));
        assert_eq!(small.flat_size(), 150);
        let lenet = CnnConfig::for_model(CnnModel::Lenet5);
        assert_eq!(lenet.sides(), Some(vec![(28, 14), (10, 5)]));
        assert_eq!(lenet.flat_size(), 400);
        // 156 + 2,416 + 48,120 + 10,164 + 850
        assert_eq!(lenet.param_count(), 61_706);
        let mut model = lenet.build_model(&mut Rng::new(1));
        let names: Vec<String> = model.layers.iter().map(|l| l.name()).collect();
        assert_eq!(names.len(), 12, "{names:?}");
        let out = model.forward(&tensor::zeros(&[3, 1, 28, 28]), Mode::Eval);
        assert_eq!(out.shape(), &[3, 10]);
        // The shapes the model computes from its layers agree with the config's.
        use crate::layer::Layer;
        assert_eq!(model.output_shape(&[3, 1, 28, 28]).unwrap(), vec![3, 10]);
        assert_eq!(model.tap("pool 2").unwrap().shape(), &[3, 16, 5, 5]);
    }

    #[test]
    fn impossible_architectures_are_refused() {
        let c = CnnConfig { filters: vec![6, 16, 16], kernel: vec![5], pool: vec![2], ..CnnConfig::default() };
        assert!(c.sides().is_none() && c.check().is_err());
        let big = CnnConfig { filters: vec![64, 64], kernel: vec![3], pad: vec![1, 1], pool: vec![0], dense: vec![1024], ..CnnConfig::default() };
        assert!(big.check().unwrap_err().message.contains("parameters"));
        assert!(CnnConfig::default().check().is_ok() && CnnConfig::for_model(CnnModel::Lenet5).check().is_ok());
        // The wide CNN: 9×9 kernels, padding 4, four conv layers of 64 filters, batch 1024
        // — under the parameter cap, far over the work budget.
        let wide = CnnConfig { filters: vec![64; 4], kernel: vec![9], pad: vec![4], pool: vec![0], bs: 1024, ..CnnConfig::default() };
        assert!(wide.param_count() < MAX_PARAMS);
        let n = wide.check().unwrap_err();
        assert!(n.message.contains("GFLOP"), "{}", n.message);
        // LeNet-5 keeps its full race and evaluates 300 images per chunk; a big model gets fewer.
        let lenet = CnnConfig::for_model(CnnModel::Lenet5);
        assert_eq!((lenet.race_images(), lenet.eval_chunk()), (64, 300));
        let big = CnnConfig { filters: vec![32, 32], kernel: vec![5], pad: vec![2, 2], pool: vec![0, 2], bs: 4, ..CnnConfig::default() };
        assert!(big.check().is_ok(), "{:?}", big.check());
        assert!(big.race_images() < 4 && big.eval_chunk() < 1000, "{} {} {:?} {:?}", big.race_images(), big.eval_chunk(), big.per_image(), big.sides());
    }
}
