//! Per-layer panel: histograms of weights, activations and weight gradients, with the numbers
//! that diagnose training (norms, update:data ratio).

use super::histogram::Histogram;
use crate::format::short;
use engine::lab::snapshot::LayerSnapshot;
use leptos::prelude::*;

/// A healthy update:data ratio sits around 1e-3.
fn ratio_class(r: f32) -> &'static str {
    if r.is_nan() {
        "unknown"
    } else if !(1e-5..1e-1).contains(&r) {
        "bad"
    } else if (1e-4..1e-2).contains(&r) {
        "good"
    } else {
        "meh"
    }
}

#[component]
pub fn LayerCard(index: usize, layer: LayerSnapshot, #[prop(default = "activations (train set)")] activations: &'static str) -> impl IntoView {
    let w = layer.params.iter().find(|p| p.name == "W").cloned();
    let b = layer.params.iter().find(|p| p.name == "b").cloned();
    let ratio = w.as_ref().map(|p| p.update_ratio).unwrap_or(0.0);
    let weights = w.clone().map(|p| view! { <Histogram title="weights W".to_string() stats=p.value color="#2563eb"/> });
    let grads = w.clone().map(|p| view! { <Histogram title="gradient ∂L/∂W".to_string() stats=p.grad color="#dc2626"/> });
    let bias = b.map(|p| format!("b: μ {} ‖b‖ {} ‖∂L/∂b‖ {}", short(p.value.mean), short(p.value.l2), short(p.grad.l2)));
    view! {
        <article class="layer-card">
            <header>
                <h4>{format!("Layer {}", index + 1)}<span class="muted">{format!(" · {}", layer.name)}</span></h4>
                <span class=format!("ratio {}", ratio_class(ratio)) title="‖ΔW‖ / ‖W‖ of the last step; about 1e-3 is healthy">
                    {if ratio.is_nan() { "update:data – (on the GPU)".to_string() } else { format!("update:data {}", short(ratio)) }}
                </span>
            </header>
            <div class="hists">
                {weights}
                <Histogram title=activations.to_string() stats=layer.activations color="#059669"/>
                {grads}
            </div>
            <p class="muted small">{bias}</p>
        </article>
    }
}
