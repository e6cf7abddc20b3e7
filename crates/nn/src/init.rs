//! Weight initialisation schemes. `fan_in`/`fan_out` are the number of inputs/outputs of one unit
//! (for a conv: channels × kernel area).
//!
//! - uniform[0,1): the naive start — every weight positive, which with ReLU and unnormalised
//!   inputs is the classic way to get stuck.
//! - normal(σ): `w ~ N(0, σ²)`.
//! - Xavier/Glorot (uniform): `w ~ U(-a, a)`, `a = sqrt(6 / (fan_in + fan_out))`; keeps variance for tanh.
//! - He/Kaiming (normal): `w ~ N(0, 2 / fan_in)`; keeps variance for ReLU.
//! - zeros: every unit identical — symmetry is never broken.

use crate::rng::Rng;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Init {
    Uniform,
    Normal,
    Xavier,
    He,
    Zeros,
}

impl Init {
    pub const ALL: [Init; 5] = [Init::Uniform, Init::Normal, Init::Xavier, Init::He, Init::Zeros];

    pub fn label(self) -> &'static str {
        match self {
            Init::Uniform => "uniform [0, 1)",
            Init::Normal => "normal (σ)",
            Init::Xavier => "Xavier / Glorot",
            Init::He => "He / Kaiming",
            Init::Zeros => "zeros",
        }
    }

    /// Fills `w` in order; `sigma` is used by `Normal` only.
    pub fn fill(self, w: &mut [f32], fan_in: usize, fan_out: usize, sigma: f32, rng: &mut Rng) {
        match self {
            Init::Uniform => w.iter_mut().for_each(|v| *v = rng.uniform()),
            Init::Normal => w.iter_mut().for_each(|v| *v = sigma * rng.normal()),
            Init::Xavier => {
                let a = (6.0 / (fan_in + fan_out) as f32).sqrt();
                w.iter_mut().for_each(|v| *v = rng.uniform_in(-a, a));
            }
            Init::He => {
                let s = (2.0 / fan_in as f32).sqrt();
                w.iter_mut().for_each(|v| *v = s * rng.normal());
            }
            Init::Zeros => w.iter_mut().for_each(|v| *v = 0.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moments(w: &[f32]) -> (f32, f32) {
        let n = w.len() as f32;
        let m = w.iter().sum::<f32>() / n;
        (m, (w.iter().map(|v| (v - m) * (v - m)).sum::<f32>() / n).sqrt())
    }

    #[test]
    fn schemes_have_the_stated_moments() {
        let mut rng = Rng::new(3);
        let mut w = vec![0.0; 40_000];
        Init::Uniform.fill(&mut w, 100, 100, 0.0, &mut rng);
        assert!(w.iter().all(|&v| (0.0..1.0).contains(&v)));
        Init::Xavier.fill(&mut w, 100, 200, 0.0, &mut rng);
        let a = (6.0f32 / 300.0).sqrt();
        assert!(w.iter().all(|&v| v.abs() <= a));
        assert!((moments(&w).1 - a / 3f32.sqrt()).abs() < 0.005);
        Init::He.fill(&mut w, 50, 10, 0.0, &mut rng);
        assert!((moments(&w).1 - (2.0f32 / 50.0).sqrt()).abs() < 0.005);
        Init::Normal.fill(&mut w, 1, 1, 0.3, &mut rng);
        assert!(moments(&w).0.abs() < 0.01 && (moments(&w).1 - 0.3).abs() < 0.01);
        Init::Zeros.fill(&mut w, 1, 1, 0.0, &mut rng);
        assert!(w.iter().all(|&v| v == 0.0));
    }
}
