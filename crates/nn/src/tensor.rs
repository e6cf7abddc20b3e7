//! f32 tensors with any number of axes, contiguous and row-major **by construction**.
//!
//! Conventions: dense batches are `(n, features)`, images `(n, c, h, w)`, sequences are
//! batch-major `(n, t, features)` with a `(n, t)` mask (see the engine's `data::seq`).
//!
//! [`Tensor`] wraps an ndarray array whose layout can't be changed from outside: it reads like an
//! array (`shape()`, `len()`, iteration, indexing through `Deref`) but offers no `&mut` access
//! to the array itself, so nothing can transpose, slice or re-stride it in place. Views
//! (`t.t()`, `t.slice(s![..])`) are ndarray views, not `Tensor`s, so a non-contiguous view can't
//! be passed where a tensor is expected — the compiler refuses it:
//!
//! ```compile_fail
//! use engine::tensor::{self, Tensor};
//! fn needs_contiguous(_: &Tensor) {}
//! let a = tensor::zeros(&[2, 3]);
//! needs_contiguous(&a.t()); // a transposed view is an ArrayView, not a Tensor
//! ```

use ndarray::{ArrayD, IxDyn, NdIndex};
use std::ops::{Deref, Index, IndexMut};

/// The engine's tensor: f32, dynamic rank, row-major, contiguous.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor(ArrayD<f32>);

impl Deref for Tensor {
    type Target = ArrayD<f32>;
    fn deref(&self) -> &ArrayD<f32> {
        &self.0
    }
}

impl Default for Tensor {
    fn default() -> Self {
        zeros(&[0])
    }
}

impl<I: NdIndex<IxDyn>> Index<I> for Tensor {
    type Output = f32;
    fn index(&self, index: I) -> &f32 {
        &self.0[index]
    }
}

impl<I: NdIndex<IxDyn>> IndexMut<I> for Tensor {
    fn index_mut(&mut self, index: I) -> &mut f32 {
        &mut self.0[index]
    }
}

impl Tensor {
    /// A tensor from any array, copied into row-major order if it isn't already (a transposed
    /// or strided view comes out with its logical element order).
    pub fn from_array(a: ArrayD<f32>) -> Tensor {
        if a.is_standard_layout() {
            Tensor(a)
        } else {
            let shape = a.shape().to_vec();
            from_vec(&shape, a.iter().copied().collect())
        }
    }

    /// The contiguous data, in row-major order.
    #[inline]
    pub fn data(&self) -> &[f32] {
        slice(self)
    }

    /// The data as a row-major vector (no copy).
    pub fn into_vec(self) -> Vec<f32> {
        self.0.into_raw_vec_and_offset().0
    }

    /// The contiguous data, mutably (the shape stays).
    #[inline]
    pub fn data_mut(&mut self) -> &mut [f32] {
        slice_mut(self)
    }
}

/// Train or evaluation mode: layers such as dropout and batch norm behave differently in each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Train,
    Eval,
}

/// A zero tensor of the given shape.
pub fn zeros(shape: &[usize]) -> Tensor {
    Tensor(ArrayD::zeros(IxDyn(shape)))
}

/// A tensor from a row-major vector. Panics if the length does not match the shape (a bug).
pub fn from_vec(shape: &[usize], data: Vec<f32>) -> Tensor {
    Tensor(ArrayD::from_shape_vec(IxDyn(shape), data).expect("shape matches data length"))
}

/// Makes `t` have `shape`, reusing its allocation when the shape is already right
/// (the hot loop calls this every step; it allocates only when the batch size changes).
pub fn resize(t: &mut Tensor, shape: &[usize]) {
    if !same(t.shape(), shape) {
        *t = zeros(shape);
    }
}

/// Shape equality as an inline loop: slice `==` calls `memcmp`, which in wasm is a byte loop in a
/// separate function — measurable when a tiny network checks shapes many times per step.
#[inline]
pub fn same(a: &[usize], b: &[usize]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// Copies `src` into `dst`, reshaping `dst` first if needed.
pub fn copy_into(dst: &mut Tensor, src: &Tensor) {
    resize(dst, src.shape());
    crate::lanes::copy(slice_mut(dst), slice(src));
}

/// The contiguous data of a tensor.
///
/// ndarray's `as_slice` re-derives the layout from the dynamic strides on every call, which cost
/// ~10 % of a tiny network's step. A [`Tensor`] is standard layout by construction (every
/// constructor makes one, and no `&mut` to the inner array escapes), so no check is needed.
#[inline]
pub fn slice(t: &Tensor) -> &[f32] {
    // SAFETY: `Tensor`'s invariant: the array is owned and in standard layout, so it holds
    // exactly `len` contiguous f32 from `as_ptr` (no public API can change its strides).
    unsafe { std::slice::from_raw_parts(t.0.as_ptr(), t.0.len()) }
}

/// The contiguous data of a tensor, mutably.
#[inline]
pub fn slice_mut(t: &mut Tensor) -> &mut [f32] {
    let len = t.0.len();
    // SAFETY: as in `slice`, and the borrow is unique.
    unsafe { std::slice::from_raw_parts_mut(t.0.as_mut_ptr(), len) }
}

/// The number of elements a shape holds, or `None` when the product overflows.
pub fn checked_len(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d))
}

/// The index of the largest value (the first on a tie; NaN never wins): a prediction's class.
pub fn argmax(v: &[f32]) -> usize {
    v.iter().enumerate().fold((0, f32::NEG_INFINITY), |best, (i, &p)| if p > best.1 { (i, p) } else { best }).0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transposed_array_becomes_a_row_major_tensor() {
        let a = from_vec(&[2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let t = Tensor::from_array(a.t().to_owned().into_dyn());
        assert_eq!(t.shape(), &[3, 2]);
        assert_eq!(t.data(), &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        // A strided (non-standard) owned array is copied into order, not read raw.
        let mut strided = ArrayD::<f32>::zeros(IxDyn(&[2, 3]));
        strided.swap_axes(0, 1);
        strided[[2, 1]] = 7.0;
        let t = Tensor::from_array(strided);
        assert_eq!(t.shape(), &[3, 2]);
        assert_eq!(t.data()[5], 7.0);
    }

    #[test]
    fn indexing_reads_and_writes_in_place() {
        let mut t = zeros(&[2, 2]);
        t[[1, 0]] = 3.0;
        assert_eq!(t.data(), &[0.0, 0.0, 3.0, 0.0]);
        assert_eq!(t[[1, 0]], 3.0);
        assert_eq!(checked_len(&[usize::MAX, 2]), None);
        assert_eq!(checked_len(&[3, 4]), Some(12));
    }
}
