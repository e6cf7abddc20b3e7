//! The CLI's allocator: the system's, with every block of 4 KiB or more aligned to a 64-byte
//! cache line. Why: a step with the first layer split by columns (`engine::columns`) has each
//! thread write its own columns of the weights, their gradients and the optimiser's state, in
//! runs of 16 floats; with the arrays on a line boundary no line holds two threads' columns.
//! Misaligned (glibc gives 16), 784 lines of W2's first layer were written by both threads
//! every step and read across in the next: its two-thread step ran at one thread's speed.
use std::alloc::{GlobalAlloc, Layout, System};

/// Blocks from this size on are aligned to [`LINE`].
const LARGE: usize = 4096;
const LINE: usize = 64;

pub struct LineAligned;

fn adjusted(layout: Layout) -> Layout {
    if layout.size() >= LARGE && layout.align() < LINE {
        // A power of two no smaller than the old alignment, the size unchanged: always valid.
        Layout::from_size_align(layout.size(), LINE).unwrap_or(layout)
    } else {
        layout
    }
}

// SAFETY: every call goes to the system allocator with the same adjusted layout for a block's
// allocation and its release (the adjustment depends on the size and alignment alone); the
// default `realloc` allocates, copies and releases through these.
unsafe impl GlobalAlloc for LineAligned {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        System.alloc(adjusted(layout))
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        System.alloc_zeroed(adjusted(layout))
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, adjusted(layout))
    }
}
