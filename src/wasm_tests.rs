//! Tests compiled to wasm32 and run by `wasm-bindgen-test-runner` (under Node): the engine must
//! compute the same bits in wasm as natively, or share links would replay differently.

use engine::lab::{build, parse_link};
use wasm_bindgen_test::wasm_bindgen_test;

#[wasm_bindgen_test]
fn libm_golden_bits_match_native() {
    for &(x, t, e, l) in engine::math::GOLDEN {
        assert_eq!(engine::math::tanh(x).to_bits(), t, "tanh({x})");
        assert_eq!(engine::math::exp(x).to_bits(), e, "exp({x})");
        assert_eq!(engine::math::ln(x.abs()).to_bits(), l, "ln({x})");
    }
}

#[wasm_bindgen_test]
fn default_fit_link_gives_the_native_loss_at_step_200() {
    // Same constant as crates/engine/tests/training.rs (native).
    const DEFAULT_FIT_LOSS_AT_200: f64 = 0.03212838992476463;
    let mut s = build(&parse_link("lab=fit").config);
    assert_eq!(s.step(200).to_bits(), (DEFAULT_FIT_LOSS_AT_200 as f32).to_bits());
}

#[wasm_bindgen_test]
fn links_parse_the_same_in_wasm() {
    let p = parse_link("?lab=fit&hidden=8,8&lr=abc&seed=18446744073709551615");
    assert_eq!(p.notices.len(), 1);
    assert_eq!(p.notices[0].key, "lr");
    assert_eq!(p.config.seed(), u64::MAX);
    assert!(p.config.to_query().contains("hidden=8%2C8"));
}

#[wasm_bindgen_test]
fn number_formats() {
    use crate::format::{exact, short};
    assert_eq!(short(0.012345), "0.01235");
    assert_eq!(short(123.456), "123.5");
    assert_eq!(short(1.5e-5), "1.500e-5");
    assert_eq!(short(f32::NAN), "NaN");
    assert_eq!(exact(0.1), "0.1");
}

#[wasm_bindgen_test]
fn simd_kernels_give_the_native_bits() {
    // gemm / dot use explicit simd128 code in wasm and plain Rust natively: same bits required.
    assert_eq!(engine::ops::gemm::kernel_fingerprint(), engine::ops::gemm::KERNEL_FINGERPRINT);
    let x: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin()).collect();
    let y: Vec<f32> = (0..37).map(|i| (i as f32 * 0.11).cos()).collect();
    assert_eq!(engine::ops::gemm::dot(&x, &y).to_bits(), engine::ops::gemm::dot_lanes(&x, &y).to_bits());
}

#[wasm_bindgen_test]
fn a_worker_trap_reads_as_out_of_memory_with_its_link() {
    let m = crate::fatal::worker_failed("RuntimeError: unreachable", "lab=cnn&bs=1024");
    assert!(m.contains("out of memory") && m.contains("?lab=cnn&bs=1024"), "{m}");
    let other = crate::fatal::worker_failed("TypeError: x is undefined", "lab=fit");
    assert!(!other.contains("out of memory") && other.contains("TypeError"), "{other}");
}

#[wasm_bindgen_test]
fn optimizer_lanes_give_the_formulas_bits() {
    // Adam, Adagrad and momentum run in explicit simd128 lanes in wasm, scalar formulas natively.
    assert_eq!(engine::optim::formulas::mismatches(), Vec::<String>::new());
}

#[wasm_bindgen_test]
fn step_lanes_give_the_scalar_bits() {
    // Zeroing, adding shard sums and comparing weights run in explicit simd128 lanes in wasm.
    assert_eq!(engine::lanes::mismatches(), Vec::<String>::new());
}

#[wasm_bindgen_test]
fn pixel_lanes_give_the_table_bits() {
    // Image batches are standardised 16 pixels at a time in simd128 lanes in wasm.
    assert_eq!(engine::math::pixel_mismatches(), Vec::<String>::new());
}
