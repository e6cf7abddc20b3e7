//! Pooling over `(n, c, h, w)` with a `k × k` window and stride `s` (no padding), and Flatten.
//!
//! ```text
//! max  y[n,c,i,j] = max_{u,v} x[n,c,i·s+u,j·s+v]   dx: dy goes to the argmax (the "switch")
//! avg  y[n,c,i,j] = mean_{u,v} x[…]                 dx: dy/k² to every input of the window
//! oh = (h − k)/s + 1
//! ```

use crate::layer::Layer;
use crate::tensor::{self, Mode, Tensor};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PoolKind {
    #[default]
    Max,
    Avg,
}

#[derive(Clone)]
pub struct Pool2d {
    pub kind: PoolKind,
    pub k: usize,
    pub stride: usize,
    in_shape: Vec<usize>,
    /// Max pooling: the flat input index each output came from.
    switches: Vec<usize>,
    y: Tensor,
    dx: Tensor,
}

impl Pool2d {
    pub fn new(kind: PoolKind, k: usize, stride: usize) -> Self {
        assert!(k > 0 && stride > 0);
        Pool2d { kind, k, stride, in_shape: Vec::new(), switches: Vec::new(), y: tensor::zeros(&[0]), dx: tensor::zeros(&[0]) }
    }
}

impl Pool2d {
    /// Output side for an input side (`None` when the window doesn't fit): `(side − k) / s + 1`.
    pub fn out_side(side: usize, k: usize, stride: usize) -> Option<usize> {
        side.checked_sub(k).map(|d| d / stride.max(1) + 1)
    }
}

impl Layer for Pool2d {
    fn scratch_bytes(&self) -> usize {
        (self.switches.len() * 2) * std::mem::size_of::<f32>()
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        let [n, c, h, w] = *input else { return Err(format!("pooling takes (n, c, h, w), not {input:?}")) };
        match (Self::out_side(h, self.k, self.stride), Self::out_side(w, self.k, self.stride)) {
            (Some(oh), Some(ow)) => Ok(vec![n, c, oh, ow]),
            _ => Err(format!("a {0}×{0} pool window does not fit a {h}×{w} map", self.k)),
        }
    }

    fn name(&self) -> String {
        format!("{} pool {}×{}", if self.kind == PoolKind::Max { "max" } else { "avg" }, self.k, self.k)
    }

    fn forward(&mut self, x: &Tensor, _mode: Mode) -> &Tensor {
        let s = x.shape();
        assert_eq!(s.len(), 4, "pool input is (n, c, h, w)");
        let (n, c, h, w) = (s[0], s[1], s[2], s[3]);
        assert!(h >= self.k && w >= self.k, "pool window larger than the image");
        let (oh, ow) = ((h - self.k) / self.stride + 1, (w - self.k) / self.stride + 1);
        self.in_shape.clear();
        self.in_shape.extend_from_slice(s);
        tensor::resize(&mut self.y, &[n, c, oh, ow]);
        self.switches.resize(n * c * oh * ow, 0);
        let xs = tensor::slice(x);
        let y = tensor::slice_mut(&mut self.y);
        let (k, st) = (self.k, self.stride);
        for plane in 0..n * c {
            for i in 0..oh {
                for j in 0..ow {
                    let out = (plane * oh + i) * ow + j;
                    let base = (plane * h + i * st) * w + j * st;
                    match self.kind {
                        PoolKind::Max => {
                            // The first maximum wins ties (and a NaN in the first cell stays).
                            let (mut best, mut at) = (xs[base], base);
                            for u in 0..k {
                                let row = base + u * w;
                                for (v, &val) in xs[row..row + k].iter().enumerate() {
                                    if val > best {
                                        best = val;
                                        at = row + v;
                                    }
                                }
                            }
                            y[out] = best;
                            self.switches[out] = at;
                        }
                        PoolKind::Avg => {
                            let mut sum = 0.0f32;
                            for u in 0..k {
                                let row = base + u * w;
                                for &val in &xs[row..row + k] {
                                    sum += val;
                                }
                            }
                            y[out] = sum / (k * k) as f32;
                        }
                    }
                }
            }
        }
        &self.y
    }

    fn backward(&mut self, dy: &Tensor) -> &Tensor {
        let s = &self.in_shape;
        let (h, w) = (s[2], s[3]);
        tensor::resize(&mut self.dx, s);
        let dx = tensor::slice_mut(&mut self.dx);
        dx.fill(0.0);
        let dys = tensor::slice(dy);
        let ys = self.y.shape();
        let (oh, ow) = (ys[2], ys[3]);
        let area = (self.k * self.k) as f32;
        for (out, &g) in dys.iter().enumerate() {
            match self.kind {
                PoolKind::Max => dx[self.switches[out]] += g,
                PoolKind::Avg => {
                    let (plane, rest) = (out / (oh * ow), out % (oh * ow));
                    let (i, j) = (rest / ow, rest % ow);
                    for u in 0..self.k {
                        for v in 0..self.k {
                            dx[(plane * h + i * self.stride + u) * w + j * self.stride + v] += g / area;
                        }
                    }
                }
            }
        }
        &self.dx
    }

    fn output(&self) -> &Tensor {
        &self.y
    }

    fn input_grad(&self) -> &Tensor {
        &self.dx
    }
}

/// `(n, …)` → `(n, product of the rest)`; backward restores the shape.
#[derive(Clone)]
pub struct Flatten {
    in_shape: Vec<usize>,
    y: Tensor,
    dx: Tensor,
}

impl Default for Flatten {
    fn default() -> Self {
        Flatten { in_shape: Vec::new(), y: tensor::zeros(&[0]), dx: tensor::zeros(&[0]) }
    }
}

impl Layer for Flatten {
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        match input.split_first() {
            Some((n, rest)) => Ok(vec![*n, rest.iter().product()]),
            None => Err("flatten needs at least one axis".into()),
        }
    }

    fn name(&self) -> String {
        "flatten".into()
    }

    fn forward(&mut self, x: &Tensor, _mode: Mode) -> &Tensor {
        self.in_shape.clear();
        self.in_shape.extend_from_slice(x.shape());
        let n = x.shape()[0];
        tensor::resize(&mut self.y, &[n, x.len() / n.max(1)]);
        crate::lanes::copy(tensor::slice_mut(&mut self.y), tensor::slice(x));
        &self.y
    }

    fn backward(&mut self, dy: &Tensor) -> &Tensor {
        tensor::resize(&mut self.dx, &self.in_shape);
        crate::lanes::copy(tensor::slice_mut(&mut self.dx), tensor::slice(dy));
        &self.dx
    }

    fn output(&self) -> &Tensor {
        &self.y
    }

    fn input_grad(&self) -> &Tensor {
        &self.dx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck;

    #[test]
    fn hand_values() {
        let x = tensor::from_vec(&[1, 1, 2, 4], vec![1.0, 5.0, 2.0, 0.0, 3.0, 4.0, 8.0, 6.0]);
        let mut m = Pool2d::new(PoolKind::Max, 2, 2);
        assert_eq!(tensor::slice(m.forward(&x, Mode::Train)), &[5.0, 8.0]);
        let dx = m.backward(&tensor::from_vec(&[1, 1, 1, 2], vec![10.0, 20.0])).clone();
        assert_eq!(tensor::slice(&dx), &[0.0, 10.0, 0.0, 0.0, 0.0, 0.0, 20.0, 0.0], "the switches route the gradient");
        let mut a = Pool2d::new(PoolKind::Avg, 2, 2);
        assert_eq!(tensor::slice(a.forward(&x, Mode::Train)), &[3.25, 4.0]);
        let dx = a.backward(&tensor::from_vec(&[1, 1, 1, 2], vec![4.0, 8.0])).clone();
        assert_eq!(tensor::slice(&dx), &[1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 2.0, 2.0]);
        let mut f = Flatten::default();
        assert_eq!(f.forward(&x, Mode::Train).shape(), &[1, 8]);
        assert_eq!(f.backward(&tensor::from_vec(&[1, 8], vec![0.0; 8])).shape(), &[1, 1, 2, 4]);
    }

    #[test]
    fn gradients_match_finite_differences() {
        // Distinct values keep the max away from ties (where it is not differentiable).
        let x = gradcheck::random_input(&[2, 2, 5, 5], 4, 0.0);
        for (kind, k, s) in [(PoolKind::Max, 2, 2), (PoolKind::Max, 3, 1), (PoolKind::Avg, 2, 1), (PoolKind::Avg, 5, 5)] {
            gradcheck::check_layer(&mut Pool2d::new(kind, k, s), &x, 1e-3, 1e-2).unwrap_or_else(|e| panic!("{kind:?} {k}/{s}: {e}"));
        }
        gradcheck::check_layer(&mut Flatten::default(), &x, 1e-2, 1e-3).unwrap();
    }
}
