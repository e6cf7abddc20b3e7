//! The engine must stay free of web crates: its normal dependency tree holds no wasm-bindgen,
//! web-sys, js-sys, leptos or wgpu — the GPU executor is `crates/gpu` (read from `cargo metadata`'s resolved graph).

use std::process::Command;

#[test]
fn engine_dependency_tree_has_no_web_crate() {
    let out = Command::new(env!("CARGO"))
        .args(["tree", "-p", "deeply-engine", "-e", "normal", "--prefix", "none", "--format", "{p}"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(tree.contains("ndarray"), "the tree was read: {tree}");
    for banned in ["wasm-bindgen", "web-sys", "js-sys", "leptos", "wgpu"] {
        assert!(
            !tree.lines().any(|l| l.starts_with(&format!("{banned} "))),
            "engine depends on {banned}:\n{tree}"
        );
    }
}
