//! A polynomial of one variable with learnable coefficients — the "learn a few coefficients"
//! first attempt at fitting a function, before a network.
//!
//! ```text
//! y = Σₖ cₖ xᵏ  (k = 0..=d)      x, y: (n, 1)   c: (d + 1)
//! dcₖ += Σᵢ dyᵢ xᵢᵏ               dxᵢ = dyᵢ Σₖ k cₖ xᵢᵏ⁻¹
//! ```

use crate::init::Init;
use crate::layer::{Layer, ParamKind};
use crate::rng::Rng;
use crate::tensor::{self, Mode, Tensor};

#[derive(Clone)]
pub struct Polynomial {
    pub degree: usize,
    pub c: Tensor,
    pub dc: Tensor,
    x: Tensor,
    y: Tensor,
    dx: Tensor,
}

impl Polynomial {
    pub fn new(degree: usize, init: Init, sigma: f32, rng: &mut Rng) -> Self {
        let mut c = tensor::zeros(&[degree + 1]);
        init.fill(tensor::slice_mut(&mut c), degree + 1, 1, sigma, rng);
        Polynomial { degree, c, dc: tensor::zeros(&[degree + 1]), x: tensor::zeros(&[0, 1]), y: tensor::zeros(&[0, 1]), dx: tensor::zeros(&[0, 1]) }
    }
}

impl Layer for Polynomial {
    fn scratch_bytes(&self) -> usize {
        (self.x.len()) * std::mem::size_of::<f32>()
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        match input {
            [n, 1] => Ok(vec![*n, 1]),
            _ => Err(format!("a polynomial takes (n, 1), not {input:?}")),
        }
    }

    fn name(&self) -> String {
        format!("polynomial, degree {}", self.degree)
    }

    fn forward(&mut self, x: &Tensor, _mode: Mode) -> &Tensor {
        tensor::copy_into(&mut self.x, x);
        tensor::resize(&mut self.y, x.shape());
        let c = tensor::slice(&self.c);
        for (y, &x) in tensor::slice_mut(&mut self.y).iter_mut().zip(tensor::slice(x)) {
            let (mut sum, mut power) = (0.0f32, 1.0f32);
            for &ck in c {
                sum += ck * power;
                power *= x;
            }
            *y = sum;
        }
        &self.y
    }

    fn backward(&mut self, dy: &Tensor) -> &Tensor {
        tensor::resize(&mut self.dx, dy.shape());
        let (c, xs, dys) = (tensor::slice(&self.c), tensor::slice(&self.x), tensor::slice(dy));
        let dc = tensor::slice_mut(&mut self.dc);
        let dx = tensor::slice_mut(&mut self.dx);
        for i in 0..xs.len() {
            let (mut power, mut slope) = (1.0f32, 0.0f32);
            for k in 0..c.len() {
                dc[k] += dys[i] * power;
                if k + 1 < c.len() {
                    slope += (k + 1) as f32 * c[k + 1] * power;
                }
                power *= xs[i];
            }
            dx[i] = dys[i] * slope;
        }
        &self.dx
    }

    fn output(&self) -> &Tensor {
        &self.y
    }

    fn input_grad(&self) -> &Tensor {
        &self.dx
    }

    fn visit_params(&mut self, f: &mut dyn FnMut(&'static str, ParamKind, &mut Tensor, &mut Tensor)) {
        f("c", ParamKind::Weight, &mut self.c, &mut self.dc);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck;

    #[test]
    fn hand_values() {
        let mut p = Polynomial::new(2, Init::Zeros, 0.0, &mut Rng::new(0));
        p.c = tensor::from_vec(&[3], vec![1.0, -2.0, 3.0]); // 1 − 2x + 3x²
        let x = tensor::from_vec(&[2, 1], vec![2.0, -1.0]);
        assert_eq!(tensor::slice(p.forward(&x, Mode::Train)), &[9.0, 6.0]);
        let dx = p.backward(&tensor::from_vec(&[2, 1], vec![1.0, 2.0])).clone();
        // slope −2 + 6x: at 2 → 10, at −1 → −8 (×2)
        assert_eq!(tensor::slice(&dx), &[10.0, -16.0]);
        // dc = Σ dy·xᵏ: [1 + 2, 2 − 2, 4 + 2]
        assert_eq!(tensor::slice(&p.dc), &[3.0, 0.0, 6.0]);
    }

    #[test]
    fn gradients_match_finite_differences() {
        let mut p = Polynomial::new(4, Init::Normal, 0.5, &mut Rng::new(3));
        let x = gradcheck::random_input(&[6, 1], 4, 0.0);
        gradcheck::check_layer(&mut p, &x, 1e-2, 2e-3).unwrap();
    }
}
