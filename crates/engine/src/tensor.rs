//! f32 tensors on ndarray, with any number of axes.
//!
//! Conventions: dense batches are `(n, features)`, images `(n, c, h, w)`, sequences
//! `(t, n, features)`. Everything is kept in standard (row-major) layout so that ops can work on
//! contiguous slices; [`zeros`] and [`resize`] guarantee it.

use ndarray::{ArrayD, IxDyn};

/// The engine's tensor: f32, dynamic rank, row-major.
pub type Tensor = ArrayD<f32>;

/// Train or evaluation mode: layers such as dropout and batch norm behave differently in each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Train,
    Eval,
}

/// A zero tensor of the given shape.
pub fn zeros(shape: &[usize]) -> Tensor {
    Tensor::zeros(IxDyn(shape))
}

/// A tensor from a row-major vector. Panics if the length does not match the shape (a bug).
pub fn from_vec(shape: &[usize], data: Vec<f32>) -> Tensor {
    Tensor::from_shape_vec(IxDyn(shape), data).expect("shape matches data length")
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
    dst.as_slice_mut().expect("standard layout").copy_from_slice(slice(src));
}

/// The contiguous data of a standard-layout tensor.
///
/// ndarray's `as_slice` re-derives the layout from the dynamic strides on every call, which cost
/// ~10 % of a tiny network's step; engine tensors are standard layout by construction (`zeros`,
/// `from_vec`, owned clones), so the check runs in debug builds only.
#[inline]
pub fn slice(t: &Tensor) -> &[f32] {
    debug_assert!(t.is_standard_layout(), "engine tensors are in standard layout");
    // SAFETY: an owned, standard-layout array holds exactly `len` contiguous f32 from `as_ptr`.
    unsafe { std::slice::from_raw_parts(t.as_ptr(), t.len()) }
}

/// The contiguous data of a standard-layout tensor, mutably.
#[inline]
pub fn slice_mut(t: &mut Tensor) -> &mut [f32] {
    debug_assert!(t.is_standard_layout(), "engine tensors are in standard layout");
    let len = t.len();
    // SAFETY: as in `slice`, and the borrow is unique.
    unsafe { std::slice::from_raw_parts_mut(t.as_mut_ptr(), len) }
}
