//! Compute backends. The CPU backend (ndarray + plain loops) is the reference; a WebGPU backend
//! (wgpu, WGSL kernels) will implement the same [`crate::layer::Layer`] ops and be selected here,
//! with parity tests against the CPU op for each kernel.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    #[default]
    Cpu,
}

impl Backend {
    pub fn label(self) -> &'static str {
        match self {
            Backend::Cpu => "cpu",
        }
    }
}
