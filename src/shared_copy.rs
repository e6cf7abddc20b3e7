//! Copies between a worker's wasm memory and the memory the workers share, through a small wasm
//! module that imports both (multi-memory; its text is `shared_copy.wat`). V8 copies between a
//! `SharedArrayBuffer` and a typed array eight bytes at a time (relaxed atomic stores, so that a
//! race cannot tear a value); `memory.copy` and SIMD loads in wasm do not. Two workers in headless
//! Chromium on this project's 2-vCPU VMs (2026-12-05, `scripts/bench-sharedcopy.mjs`), 400 KB
//! that the other worker has just written or read: written in 58–64 µs instead of 138–204, read
//! in 35–36 instead of 39–57, and read and added to another array (the lead's root) in the time
//! of the read alone. A helper's answer, the sum of its two micro-shards' gradients, is written
//! straight into the shared memory the same way (`add_out`).
//!
//! Where the browser lacks multi-memory (the module does not compile) or shared wasm memory,
//! [`copier`] is None and the caller copies through typed arrays as before: the same values.

use js_sys::{Object, Reflect, Uint8Array, WebAssembly};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// `shared_copy.wat`, assembled (wabt 1.0.37: `wat2wasm --enable-multi-memory`).
const MODULE: [u8; 357] = [
    0, 97, 115, 109, 1, 0, 0, 0, 1, 14, 2, 96, 3, 127, 127, 127, 0, 96, 4, 127, 127, 127, 127, 0, 2, 25, 2, 1, 109, 3, 111, 119, 110, 2, 0, 0, 1, 109, 6, 115,
    104, 97, 114, 101, 100, 2, 3, 0, 128, 128, 4, 3, 5, 4, 0, 0, 1, 1, 7, 41, 4, 7, 99, 111, 112, 121, 95, 105, 110, 0, 0, 8, 99, 111, 112, 121, 95, 111, 117,
    116, 0, 1, 7, 97, 100, 100, 95, 111, 117, 116, 0, 2, 6, 97, 100, 100, 95, 105, 110, 0, 3, 10, 253, 1, 4, 12, 0, 32, 0, 32, 1, 32, 2, 252, 10, 0, 1, 11, 12,
    0, 32, 0, 32, 1, 32, 2, 252, 10, 1, 0, 11, 112, 1, 2, 127, 32, 3, 65, 112, 113, 33, 5, 2, 64, 3, 64, 32, 4, 32, 5, 79, 13, 1, 32, 0, 32, 4, 106, 32, 1, 32,
    4, 106, 253, 0, 4, 0, 32, 2, 32, 4, 106, 253, 0, 4, 0, 253, 228, 1, 253, 11, 68, 1, 0, 32, 4, 65, 16, 106, 33, 4, 12, 0, 11, 11, 2, 64, 3, 64, 32, 4, 32,
    3, 79, 13, 1, 32, 0, 32, 4, 106, 32, 1, 32, 4, 106, 42, 2, 0, 32, 2, 32, 4, 106, 42, 2, 0, 146, 56, 66, 1, 0, 32, 4, 65, 4, 106, 33, 4, 12, 0, 11, 11, 11,
    112, 1, 2, 127, 32, 3, 65, 112, 113, 33, 5, 2, 64, 3, 64, 32, 4, 32, 5, 79, 13, 1, 32, 0, 32, 4, 106, 32, 1, 32, 4, 106, 253, 0, 4, 0, 32, 2, 32, 4, 106,
    253, 0, 68, 1, 0, 253, 228, 1, 253, 11, 4, 0, 32, 4, 65, 16, 106, 33, 4, 12, 0, 11, 11, 2, 64, 3, 64, 32, 4, 32, 3, 79, 13, 1, 32, 0, 32, 4, 106, 32, 1,
    32, 4, 106, 42, 2, 0, 32, 2, 32, 4, 106, 42, 66, 1, 0, 146, 56, 2, 0, 32, 4, 65, 4, 106, 33, 4, 12, 0, 11, 11, 11,
];

#[wasm_bindgen]
extern "C" {
    /// The module's exports: offsets and lengths in bytes.
    #[derive(Clone, Debug)]
    pub type Copier;
    /// own[dst..dst + bytes] = shared[src..src + bytes]
    #[wasm_bindgen(method)]
    fn copy_in(this: &Copier, dst: u32, src: u32, bytes: u32);
    /// shared[dst..dst + bytes] = own[src..src + bytes]
    #[wasm_bindgen(method)]
    fn copy_out(this: &Copier, dst: u32, src: u32, bytes: u32);
    /// out[i] = a[i] + shared[src + i] (f32)
    #[wasm_bindgen(method)]
    fn add_in(this: &Copier, out: u32, a: u32, src: u32, bytes: u32);
    /// shared[dst + i] = a[i] + b[i] (f32)
    #[wasm_bindgen(method)]
    fn add_out(this: &Copier, dst: u32, a: u32, b: u32, bytes: u32);
}

impl Copier {
    /// `out` = the floats at byte `from` of the shared memory.
    pub fn read(&self, from: u32, out: &mut [f32]) {
        self.copy_in(out.as_mut_ptr() as u32, from, std::mem::size_of_val(out) as u32);
    }

    /// The floats at byte `to` of the shared memory = `values`.
    pub fn write(&self, to: u32, values: &[f32]) {
        self.copy_out(to, values.as_ptr() as u32, std::mem::size_of_val(values) as u32);
    }

    /// `out[i] = a[i] + s[i]`, `s` the floats at byte `from` of the shared memory (`a` as long as
    /// `out`: the bits of `lanes::add_to(out, a, s)`).
    pub fn add(&self, from: u32, out: &mut [f32], a: &[f32]) {
        let n = out.len().min(a.len());
        self.add_in(out.as_mut_ptr() as u32, a.as_ptr() as u32, from, (n * 4) as u32);
    }
}

impl Copier {
    /// The floats at byte `to` of the shared memory = `a[i] + b[i]` (as long as the shorter: the
    /// bits of `lanes::add_to(out, a, b)`).
    pub fn write_sum(&self, to: u32, a: &[f32], b: &[f32]) {
        let n = a.len().min(b.len());
        self.add_out(to, a.as_ptr() as u32, b.as_ptr() as u32, (n * 4) as u32);
    }
}

/// A shared wasm memory of at least `bytes` (its `buffer` is a `SharedArrayBuffer`), when the
/// browser makes one.
pub fn shared_memory(bytes: usize) -> Option<WebAssembly::Memory> {
    let pages = bytes.div_ceil(65_536).max(1) as f64;
    let descriptor = Object::new();
    for (k, v) in [("initial", JsValue::from(pages)), ("maximum", JsValue::from(pages)), ("shared", JsValue::TRUE)] {
        Reflect::set(&descriptor, &k.into(), &v).ok()?;
    }
    WebAssembly::Memory::new(&descriptor).ok()
}

/// The copier between this module's memory and `shared` (None: the browser cannot build it).
pub fn copier(shared: &WebAssembly::Memory) -> Option<Copier> {
    let module = WebAssembly::Module::new(&Uint8Array::from(&MODULE[..])).ok()?;
    let memories = Object::new();
    Reflect::set(&memories, &"own".into(), &wasm_bindgen::memory()).ok()?;
    Reflect::set(&memories, &"shared".into(), shared).ok()?;
    let imports = Object::new();
    Reflect::set(&imports, &"m".into(), &memories).ok()?;
    let instance = WebAssembly::Instance::new(&module, &imports).ok()?;
    Some(instance.exports().unchecked_into::<Copier>())
}

/// Copies values of every kind (signed zeros, subnormals, ±∞) both ways and adds
/// them, at odd offsets and lengths, and compares every bit with the typed-array copies and
/// `lanes::add_to`: "multi-memory copies: exact", or why not (`deeplyDebug.sharedCopyCheck()`).
pub fn check() -> Result<String, String> {
    let memory = shared_memory(1 << 20).ok_or("no shared wasm memory here")?;
    let copier = copier(&memory).ok_or("no multi-memory here: typed-array copies")?;
    let floats = js_sys::Float32Array::new(&memory.buffer());
    let special = [0.0, -0.0, 1.0, -2.5, f32::MIN_POSITIVE / 4.0, f32::INFINITY, f32::NEG_INFINITY, f32::MAX, 3.0e-39, -7.25e12];
    for n in [0usize, 1, 3, 4, 5, 16, 17, 1000, 16 * 1024 + 3] {
        for at in [0u32, 1, 16, 4099] {
            let values: Vec<f32> = (0..n).map(|i| special[i % special.len()] * (1.0 + (i / special.len()) as f32 / 64.0)).collect();
            copier.write(at * 4, &values);
            let mut seen = vec![0.0f32; n];
            floats.subarray(at, at + n as u32).copy_to(&mut seen);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            if bits(&seen) != bits(&values) {
                return Err(format!("written {n} floats at {at}: other bits"));
            }
            let mut back = vec![9.0f32; n];
            copier.read(at * 4, &mut back);
            if bits(&back) != bits(&values) {
                return Err(format!("read {n} floats at {at}: other bits"));
            }
            let a: Vec<f32> = values.iter().rev().copied().collect();
            let (mut sum, mut expected) = (vec![0.0f32; n], vec![0.0f32; n]);
            copier.add(at * 4, &mut sum, &a);
            engine::lanes::add_to(&mut expected, &a, &values);
            if bits(&sum) != bits(&expected) {
                return Err(format!("added {n} floats at {at}: other bits"));
            }
            copier.write_sum(at * 4, &a, &expected);
            floats.subarray(at, at + n as u32).copy_to(&mut seen);
            engine::lanes::add_to(&mut sum, &a, &expected);
            if bits(&seen) != bits(&sum) {
                return Err(format!("summed {n} floats into the shared memory at {at}: other bits"));
            }
        }
    }
    Ok("multi-memory copies: exact".into())
}
