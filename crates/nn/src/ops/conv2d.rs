//! 2-D convolution (cross-correlation, as in every framework), in two implementations that must
//! agree: plain loops (the version a learner writes) and im2col + GEMM (the fast one).
//!
//! ```text
//! x: (n, c, h, w)   W: (o, c, k, k)   b: (o)   y: (n, o, oh, ow)
//! oh = (h + 2p − k)/s + 1,  ow = (w + 2p − k)/s + 1
//! y[n,o,i,j] = b[o] + Σ_{c,u,v} W[o,c,u,v] · x[n, c, i·s+u−p, j·s+v−p]      (zero outside x)
//! dW[o,c,u,v] += Σ_{n,i,j} dy[n,o,i,j] · x[n, c, i·s+u−p, j·s+v−p]
//! db[o] += Σ_{n,i,j} dy[n,o,i,j]
//! dx[n,c,i·s+u−p, j·s+v−p] += Σ_o dy[n,o,i,j] · W[o,c,u,v]
//! im2col: cols (c·k·k, oh·ow) per image, so y_n = W(o, c·k·k) · cols + b and
//!         dW += dy_n · colsᵀ,  dcols = Wᵀ · dy_n,  dx_n = col2im(dcols)
//! ```

use super::gemm;
use crate::init::Init;
use crate::layer::{Layer, ParamKind};
use crate::rng::Rng;
use crate::tensor::{self, Mode, Tensor};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConvImpl {
    Naive,
    #[default]
    Im2col,
}

#[derive(Clone)]
pub struct Conv2d {
    pub c_in: usize,
    pub c_out: usize,
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
    pub implementation: ConvImpl,
    pub w: Tensor,
    pub b: Tensor,
    pub dw: Tensor,
    pub db: Tensor,
    x: Tensor,
    y: Tensor,
    dx: Tensor,
    /// im2col buffers, reused between steps (no allocation once the batch size settles): the
    /// columns of every image of the batch, one image's columns transposed, Wᵀ, and dcols.
    cols: Vec<f32>,
    w_t: Vec<f32>,
    dcols: Vec<f32>,
    needs_input_grad: bool,
}

impl Conv2d {
    pub fn new(c_in: usize, c_out: usize, k: usize, stride: usize, pad: usize, init: Init, rng: &mut Rng) -> Self {
        assert!(k > 0 && stride > 0, "kernel and stride are positive");
        let mut w = tensor::zeros(&[c_out, c_in, k, k]);
        init.fill(tensor::slice_mut(&mut w), c_in * k * k, c_out * k * k, 0.1, rng);
        Conv2d {
            c_in,
            c_out,
            k,
            stride,
            pad,
            implementation: ConvImpl::Im2col,
            w,
            b: tensor::zeros(&[c_out]),
            dw: tensor::zeros(&[c_out, c_in, k, k]),
            db: tensor::zeros(&[c_out]),
            x: tensor::zeros(&[0]),
            y: tensor::zeros(&[0]),
            dx: tensor::zeros(&[0]),
            cols: Vec::new(),
            w_t: Vec::new(),
            dcols: Vec::new(),
            needs_input_grad: true,
        }
    }

    /// Output side for an input side (`None` when the kernel doesn't fit): `(side + 2p − k) / s + 1`.
    pub fn out_side(side: usize, k: usize, stride: usize, pad: usize) -> Option<usize> {
        (side + 2 * pad).checked_sub(k).map(|d| d / stride.max(1) + 1)
    }

    /// The weights `(c_out, c_in, k, k)`, to draw the filters.
    pub fn filters(&self) -> &Tensor {
        &self.w
    }

    /// Output height and width for an input of `h × w`.
    pub fn out_size(&self, h: usize, w: usize) -> (usize, usize) {
        ((h + 2 * self.pad - self.k) / self.stride + 1, (w + 2 * self.pad - self.k) / self.stride + 1)
    }

    fn dims(&self) -> (usize, usize, usize, usize, usize) {
        let s = self.x.shape();
        let (oh, ow) = self.out_size(s[2], s[3]);
        (s[0], s[2], s[3], oh, ow)
    }

    /// The input position read by output (i, j) and kernel offset (u, v), if inside the image.
    #[inline]
    fn source(&self, i: usize, u: usize, h: usize) -> Option<usize> {
        source(i, u, h, self.stride, self.pad)
    }

    fn forward_naive(&mut self) {
        let (n, h, w, oh, ow) = self.dims();
        let (c, o, k) = (self.c_in, self.c_out, self.k);
        let (x, wt, b) = (tensor::slice(&self.x), tensor::slice(&self.w), tensor::slice(&self.b));
        let mut y = vec![0.0f32; n * o * oh * ow];
        for ni in 0..n {
            for oi in 0..o {
                for i in 0..oh {
                    for j in 0..ow {
                        let mut s = b[oi];
                        for ci in 0..c {
                            for u in 0..k {
                                let Some(r) = self.source(i, u, h) else { continue };
                                for v in 0..k {
                                    let Some(q) = self.source(j, v, w) else { continue };
                                    s += wt[((oi * c + ci) * k + u) * k + v] * x[((ni * c + ci) * h + r) * w + q];
                                }
                            }
                        }
                        y[((ni * o + oi) * oh + i) * ow + j] = s;
                    }
                }
            }
        }
        self.y = tensor::from_vec(&[n, o, oh, ow], y);
    }

    fn backward_naive(&mut self, dy: &[f32]) {
        let (n, h, w, oh, ow) = self.dims();
        let (c, o, k) = (self.c_in, self.c_out, self.k);
        let x = tensor::slice(&self.x).to_vec();
        let wt = tensor::slice(&self.w).to_vec();
        let mut dx = vec![0.0f32; n * c * h * w];
        let dw = tensor::slice_mut(&mut self.dw);
        for ni in 0..n {
            for oi in 0..o {
                for i in 0..oh {
                    for j in 0..ow {
                        let g = dy[((ni * o + oi) * oh + i) * ow + j];
                        for ci in 0..c {
                            for u in 0..k {
                                let pos_r = (i * self.stride + u) as isize - self.pad as isize;
                                if pos_r < 0 || pos_r as usize >= h {
                                    continue;
                                }
                                for v in 0..k {
                                    let pos_q = (j * self.stride + v) as isize - self.pad as isize;
                                    if pos_q < 0 || pos_q as usize >= w {
                                        continue;
                                    }
                                    let xi = ((ni * c + ci) * h + pos_r as usize) * w + pos_q as usize;
                                    let wi = ((oi * c + ci) * k + u) * k + v;
                                    dw[wi] += g * x[xi];
                                    dx[xi] += g * wt[wi];
                                }
                            }
                        }
                    }
                }
            }
        }
        let db = tensor::slice_mut(&mut self.db);
        for ni in 0..n {
            for oi in 0..o {
                let plane = &dy[(ni * o + oi) * oh * ow..(ni * o + oi + 1) * oh * ow];
                db[oi] += plane.iter().sum::<f32>();
            }
        }
        self.dx = tensor::from_vec(&[n, c, h, w], dx);
    }

    /// Writes the columns (c·k·k, oh·ow) of image `ni` into `out`: row (c, u, v) holds the input
    /// pixel each output position reads through kernel offset (u, v), zero in the padding.
    fn im2col(&self, ni: usize, out: &mut [f32]) {
        let (_, h, w, oh, ow) = self.dims();
        let (c, k) = (self.c_in, self.k);
        let x = tensor::slice(&self.x);
        for ci in 0..c {
            let plane = &x[(ni * c + ci) * h * w..(ni * c + ci + 1) * h * w];
            for u in 0..k {
                for v in 0..k {
                    let row = (ci * k + u) * k + v;
                    let out = &mut out[row * oh * ow..(row + 1) * oh * ow];
                    let (j0, j1) = valid_range(ow, v, w, self.stride, self.pad);
                    for i in 0..oh {
                        let dst = &mut out[i * ow..(i + 1) * ow];
                        let Some(r) = self.source(i, u, h) else {
                            dst.fill(0.0);
                            continue;
                        };
                        dst[..j0].fill(0.0);
                        dst[j1..].fill(0.0);
                        let row = &plane[r * w..(r + 1) * w];
                        if self.stride == 1 {
                            // Stride 1: a contiguous run of the input row.
                            let q0 = j0 + v - self.pad;
                            dst[j0..j1].copy_from_slice(&row[q0..q0 + (j1 - j0)]);
                        } else {
                            for (j, d) in dst[j0..j1].iter_mut().enumerate() {
                                *d = row[(j0 + j) * self.stride + v - self.pad];
                            }
                        }
                    }
                }
            }
        }
    }

    /// y_n = W (o × c·k·k) · cols_n + b, per image; the columns are kept for the backward pass.
    fn forward_im2col(&mut self) {
        let (n, _, _, oh, ow) = self.dims();
        let (o, ckk, p) = (self.c_out, self.c_in * self.k * self.k, oh * ow);
        tensor::resize(&mut self.y, &[n, o, oh, ow]);
        // One image's columns at a time: they stay in cache between im2col and the product
        // (a whole batch's would be megabytes); the backward pass unfolds them again.
        let mut cols = std::mem::take(&mut self.cols);
        cols.resize(ckk * p, 0.0);
        for ni in 0..n {
            let cols_n = &mut cols[..];
            self.im2col(ni, cols_n);
            let (w, b) = (tensor::slice(&self.w), tensor::slice(&self.b));
            let y = &mut tensor::slice_mut(&mut self.y)[ni * o * p..(ni + 1) * o * p];
            for (oi, plane) in y.chunks_mut(p).enumerate() {
                plane.fill(b[oi]);
            }
            gemm::gemm(o, ckk, p, w, cols_n, y, true);
        }
        self.cols = cols;
    }

    /// dW += dy_n · cols_nᵀ,  dcols = Wᵀ · dy_n,  dx_n = col2im(dcols), per image.
    fn backward_im2col(&mut self, dy: &[f32]) {
        let (n, h, w, oh, ow) = self.dims();
        let (c, o, k) = (self.c_in, self.c_out, self.k);
        let (ckk, p, stride, pad) = (c * k * k, oh * ow, self.stride, self.pad);
        if self.needs_input_grad {
            tensor::resize(&mut self.dx, &[n, c, h, w]);
            tensor::slice_mut(&mut self.dx).fill(0.0);
            self.w_t.resize(ckk * o, 0.0);
            gemm::transpose(o, ckk, tensor::slice(&self.w), &mut self.w_t);
            self.dcols.resize(ckk * p, 0.0);
        }
        let mut cols = std::mem::take(&mut self.cols);
        cols.resize(ckk * p, 0.0);
        for ni in 0..n {
            let dy_n = &dy[ni * o * p..(ni + 1) * o * p];
            self.im2col(ni, &mut cols);
            // dW (o × c·k·k) += dy_n (o × P) · cols_nᵀ: rows of both are contiguous.
            gemm::gemm_nt(o, p, ckk, dy_n, &cols, tensor::slice_mut(&mut self.dw), true);
            let db = tensor::slice_mut(&mut self.db);
            for oi in 0..o {
                db[oi] += dy_n[oi * p..(oi + 1) * p].iter().sum::<f32>();
            }
            if !self.needs_input_grad {
                continue;
            }
            gemm::gemm(ckk, o, p, &self.w_t, dy_n, &mut self.dcols, false);
            // col2im: scatter-add the column gradients back to the image.
            let dx = tensor::slice_mut(&mut self.dx);
            for ci in 0..c {
                let plane = &mut dx[(ni * c + ci) * h * w..(ni * c + ci + 1) * h * w];
                for u in 0..k {
                    for v in 0..k {
                        let row = (ci * k + u) * k + v;
                        let src = &self.dcols[row * p..(row + 1) * p];
                        let (j0, j1) = valid_range(ow, v, w, stride, pad);
                        for i in 0..oh {
                            let Some(r) = source(i, u, h, stride, pad) else { continue };
                            let row = &mut plane[r * w..(r + 1) * w];
                            let from = &src[i * ow + j0..i * ow + j1];
                            if stride == 1 {
                                let q0 = j0 + v - pad;
                                for (d, g) in row[q0..q0 + (j1 - j0)].iter_mut().zip(from) {
                                    *d += g;
                                }
                            } else {
                                for (j, g) in from.iter().enumerate() {
                                    row[(j0 + j) * stride + v - pad] += g;
                                }
                            }
                        }
                    }
                }
            }
        }
        self.cols = cols;
    }
}

/// The input position read by output `i` through kernel offset `u` (stride `s`, padding `p`).
#[inline]
fn source(i: usize, u: usize, h: usize, s: usize, p: usize) -> Option<usize> {
    let pos = (i * s + u) as isize - p as isize;
    (pos >= 0 && (pos as usize) < h).then_some(pos as usize)
}

/// The outputs `j0..j1` whose input column `j·s + v − p` lies inside `0..w`.
fn valid_range(ow: usize, v: usize, w: usize, s: usize, p: usize) -> (usize, usize) {
    let j0 = (0..ow).find(|&j| source(j, v, w, s, p).is_some()).unwrap_or(ow);
    let j1 = (j0..ow).find(|&j| source(j, v, w, s, p).is_none()).unwrap_or(ow);
    (j0, j1)
}

impl Layer for Conv2d {
    fn scratch_bytes(&self) -> usize {
        (self.x.len() + self.cols.len() + self.w_t.len() + self.dcols.len()) * std::mem::size_of::<f32>()
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        let [n, c, h, w] = *input else { return Err(format!("a convolution takes (n, c, h, w), not {input:?}")) };
        if c != self.c_in {
            return Err(format!("{} takes {} channels, not {c}", self.name(), self.c_in));
        }
        match (Self::out_side(h, self.k, self.stride, self.pad), Self::out_side(w, self.k, self.stride, self.pad)) {
            (Some(oh), Some(ow)) => Ok(vec![n, self.c_out, oh, ow]),
            _ => Err(format!("a {0}×{0} kernel does not fit a {h}×{w} image with padding {1}", self.k, self.pad)),
        }
    }

    fn name(&self) -> String {
        format!("conv {}×{}×{} → {}{}", self.k, self.k, self.c_in, self.c_out, if self.pad > 0 { format!(", pad {}", self.pad) } else { String::new() })
    }

    fn forward(&mut self, x: &Tensor, _mode: Mode) -> &Tensor {
        assert_eq!(x.ndim(), 4, "conv input is (n, c, h, w)");
        assert_eq!(x.shape()[1], self.c_in, "conv input channels");
        tensor::copy_into(&mut self.x, x);
        match self.implementation {
            ConvImpl::Naive => self.forward_naive(),
            ConvImpl::Im2col => self.forward_im2col(),
        }
        &self.y
    }

    fn backward(&mut self, dy: &Tensor) -> &Tensor {
        let dy = tensor::slice(dy);
        match self.implementation {
            ConvImpl::Naive => self.backward_naive(dy),
            ConvImpl::Im2col => self.backward_im2col(dy),
        }
        &self.dx
    }

    fn set_needs_input_grad(&mut self, needed: bool) {
        self.needs_input_grad = needed;
    }

    fn output(&self) -> &Tensor {
        &self.y
    }

    fn input_grad(&self) -> &Tensor {
        &self.dx
    }

    fn visit_params(&mut self, f: &mut dyn FnMut(&'static str, ParamKind, &mut Tensor, &mut Tensor)) {
        f("W", ParamKind::Weight, &mut self.w, &mut self.dw);
        f("b", ParamKind::Bias, &mut self.b, &mut self.db);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck;

    fn conv(c: usize, o: usize, k: usize, s: usize, p: usize, imp: ConvImpl, seed: u64) -> Conv2d {
        let mut cv = Conv2d::new(c, o, k, s, p, Init::Normal, &mut Rng::new(seed));
        cv.b = gradcheck::random_input(&[o], seed + 1, 0.0);
        cv.implementation = imp;
        cv
    }

    #[test]
    fn hand_values() {
        for imp in [ConvImpl::Naive, ConvImpl::Im2col] {
            let mut cv = Conv2d::new(1, 1, 2, 1, 0, Init::Zeros, &mut Rng::new(0));
            cv.implementation = imp;
            cv.w = tensor::from_vec(&[1, 1, 2, 2], vec![1.0, 0.0, 0.0, -1.0]);
            cv.b = tensor::from_vec(&[1], vec![0.5]);
            // x = [[1 2 3] [4 5 6] [7 8 9]]: y[i,j] = x[i,j] − x[i+1,j+1] + 0.5 = −3.5 everywhere
            let x = tensor::from_vec(&[1, 1, 3, 3], (1..=9).map(|v| v as f32).collect());
            assert_eq!(tensor::slice(cv.forward(&x, Mode::Train)), &[-3.5; 4], "{imp:?}");
            let dx = cv.backward(&tensor::from_vec(&[1, 1, 2, 2], vec![1.0; 4])).clone();
            assert_eq!(tensor::slice(&dx), &[1.0, 1.0, 0.0, 1.0, 0.0, -1.0, 0.0, -1.0, -1.0], "{imp:?}");
            // dW[u,v] = Σ x over the 2×2 window positions: [1+2+4+5, 2+3+5+6, 4+5+7+8, 5+6+8+9]
            assert_eq!(tensor::slice(&cv.dw), &[12.0, 16.0, 24.0, 28.0]);
            assert_eq!(tensor::slice(&cv.db), &[4.0]);
            // Padding 1 and stride 2 give a 2×2 output from 3×3.
            let mut p = Conv2d::new(1, 1, 3, 2, 1, Init::Zeros, &mut Rng::new(0));
            p.implementation = imp;
            assert_eq!(p.forward(&x, Mode::Train).shape(), &[1, 1, 2, 2]);
        }
    }

    #[test]
    fn gradients_match_finite_differences_in_both_implementations() {
        for imp in [ConvImpl::Naive, ConvImpl::Im2col] {
            for (c, o, k, s, p) in [(2, 3, 3, 1, 1), (1, 2, 2, 2, 0)] {
                let mut cv = conv(c, o, k, s, p, imp, 7);
                let x = gradcheck::random_input(&[2, c, 5, 5], 8, 0.0);
                gradcheck::check_layer(&mut cv, &x, 1e-2, 2e-3).unwrap_or_else(|e| panic!("{imp:?} {c},{o},{k},{s},{p}: {e}"));
            }
        }
    }

    #[test]
    fn naive_and_im2col_agree_on_random_shapes() {
        let mut rng = Rng::new(11);
        for t in 0..25 {
            let (c, o, k) = (1 + rng.below(3), 1 + rng.below(4), 1 + rng.below(5));
            let (s, p) = (1 + rng.below(2), rng.below(3));
            let (h, w) = (k + rng.below(8), k + rng.below(8));
            let x = gradcheck::random_input(&[1 + rng.below(3), c, h, w], 100 + t, 0.0);
            let mut a = conv(c, o, k, s, p, ConvImpl::Naive, t);
            let mut b = conv(c, o, k, s, p, ConvImpl::Im2col, t);
            let (ya, yb) = (a.forward(&x, Mode::Train).clone(), b.forward(&x, Mode::Train).clone());
            let dy = gradcheck::random_input(ya.shape(), 200 + t, 0.0);
            let (dxa, dxb) = (a.backward(&dy).clone(), b.backward(&dy).clone());
            let max_diff = |p: &Tensor, q: &Tensor| tensor::slice(p).iter().zip(tensor::slice(q)).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
            assert_eq!(ya.shape(), yb.shape());
            assert!(max_diff(&ya, &yb) <= 1e-5, "y: {}", max_diff(&ya, &yb));
            assert!(max_diff(&dxa, &dxb) <= 1e-5, "dx");
            assert!(max_diff(&a.dw, &b.dw) <= 1e-5, "dW");
            assert!(max_diff(&a.db, &b.db) <= 1e-5, "db");
        }
    }
}
