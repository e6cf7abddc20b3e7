//! Backprop as a chain of vector–Jacobian products (the fit and playground labs): the last
//! mini-batch flowing forward through each layer and its gradient flowing back — per layer the
//! shapes, the VJP it applies and the norms of what flows; click a layer for one example's
//! numbers. The worker traces a copy of the model, so the view never changes training.

use crate::client::LabState;
use crate::protocol::Command;
use engine::lab::vjp::{VjpLayer, VjpView, SHOWN};
use leptos::prelude::*;

/// Traces at most this often while training (a trace copies the model).
const TRACE_EVERY_MS: f64 = 400.0;

/// A number in four significant digits (scientific when tiny or huge).
fn fmt(v: f32) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if !v.is_finite() {
        format!("{v}")
    } else if !(1e-3..1e4).contains(&a) {
        format!("{v:.3e}")
    } else {
        let decimals = (3 - a.log10().floor() as i32).clamp(0, 6) as usize;
        format!("{v:.decimals$}")
    }
}

fn shape(s: &[usize]) -> String {
    format!("({})", s.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("×"))
}

/// Full precision for the tests (the shortest text that reads back as the same f32).
fn exact(v: &[f32]) -> String {
    v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(",")
}

#[component]
pub fn Backprop(state: LabState) -> impl IntoView {
    let open = RwSignal::new(false);
    let example = RwSignal::new(0usize);
    let selected = RwSignal::new(0usize);
    let last_sent = StoredValue::new(f64::NEG_INFINITY);
    // A trace when the panel opens, the example changes, a paused run moves, and at most every
    // TRACE_EVERY_MS while it trains.
    Effect::new(move |_| {
        let _step = state.snapshot.with(|s| s.as_ref().map(|s| s.step));
        let running = state.running.get();
        let ex = example.get();
        if !open.get() {
            return;
        }
        let now = js_sys::Date::now();
        if running && now - last_sent.get_value() < TRACE_EVERY_MS {
            return;
        }
        last_sent.set_value(now);
        state.send(Command::Trace { example: ex });
    });
    let toggle = move |_| {
        let now_open = !open.get_untracked();
        if !now_open {
            state.vjp.set(None);
        }
        open.set(now_open);
    };
    let body = move || {
        if !open.get() {
            return None;
        }
        Some(match state.vjp.get() {
            None => view! { <p class="muted small">"Tracing…"</p> }.into_any(),
            Some(Err(why)) => view! { <p class="field-error" id="vjp-error" role="status">{why}</p> }.into_any(),
            Some(Ok(v)) => view! { <Chain v=v selected example/> }.into_any(),
        })
    };
    view! {
        <div class="card wide backprop" id="backprop">
            <div class="backprop-head">
                <h3>"Backprop as a chain of VJPs"</h3>
                <button id="backprop-toggle" aria-expanded=move || open.get().to_string() aria-controls="backprop-body" on:click=toggle
                    title="Trace the last mini-batch through every layer, forward and back">
                    {move || if open.get() { "Hide" } else { "Show" }}
                </button>
            </div>
            <p class="muted small">
                "Each layer's backward pass is a vector–Jacobian product: given "<code>"dy = ∂L/∂y"</code>
                " it returns "<code>"dx = ∂L/∂x"</code>" (and its weights' gradients) without ever forming the Jacobian. "
                "Forward runs left to right, the gradient right to left, starting at the loss. The numbers are the last mini-batch with the current weights."
            </p>
            <div id="backprop-body">{body}</div>
        </div>
    }
}

/// The layers as cards, the loss at the end, and the selected layer's detail.
#[component]
fn Chain(v: VjpView, selected: RwSignal<usize>, example: RwSignal<usize>) -> impl IntoView {
    let n = v.layers.len();
    if selected.get_untracked() >= n {
        selected.set(0);
    }
    let cards = v
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let l = l.clone();
            view! {
                <LayerCard i l selected/>
                <span class="vjp-arrow" aria-hidden="true">"⇄"</span>
            }
        })
        .collect_view();
    let detail = {
        let v = v.clone();
        move || {
            let i = selected.get().min(v.layers.len().saturating_sub(1));
            v.layers.get(i).cloned().map(|l| view! { <Detail l batch=v.batch example target=v.target.clone() last=i + 1 == v.layers.len()/> })
        }
    };
    view! {
        <p class="small" id="vjp-summary" data-step=v.step.to_string() data-example=v.example.to_string() data-loss=v.loss.to_string()>
            {format!("Step {} · a mini-batch of {} · loss {}", v.step, v.batch, fmt(v.loss))}
        </p>
        <div class="vjp-chain" id="vjp-chain">
            {cards}
            <div class="vjp-layer vjp-loss" id="vjp-loss">
                <b>"loss"</b>
                <code class="vjp-rule">{v.loss_rule.clone()}</code>
                <span class="small">{format!("L = {}", fmt(v.loss))}</span>
            </div>
        </div>
        {detail}
    }
}

#[component]
fn LayerCard(i: usize, l: VjpLayer, selected: RwSignal<usize>) -> impl IntoView {
    let grads = l.grad_norms.iter().map(|(k, v)| format!("{k}:{v}")).collect::<Vec<_>>().join(";");
    let grad_view = l.grad_norms.iter().map(|(k, v)| view! { <span class="vjp-grad">{format!("‖{k}‖ {}", fmt(*v))}</span> }).collect_view();
    let rules = l.rules.iter().map(|r| view! { <code class="vjp-rule">{r.clone()}</code> }).collect_view();
    let params = if l.params.is_empty() { String::new() } else { l.params.join(", ") };
    view! {
        <button class="vjp-layer" id=format!("vjp-layer-{i}") aria-pressed=move || (selected.get() == i).to_string()
            class:selected=move || selected.get() == i on:click=move |_| selected.set(i)
            data-x-norm=l.x_norm.to_string() data-y-norm=l.y_norm.to_string()
            data-dy-norm=l.dy_norm.to_string() data-dx-norm=l.dx_norm.to_string() data-grads=grads
            title="Show this layer's numbers for one example">
            <b>{l.name.clone()}</b>
            <span class="small muted">{format!("{} → {}", shape(&l.input), shape(&l.output))}</span>
            {(!params.is_empty()).then(|| view! { <span class="small muted">{params}</span> })}
            <code class="vjp-fwd">{l.forward.clone()}</code>
            <span class="small">{format!("‖x‖ {} → ‖y‖ {}", fmt(l.x_norm), fmt(l.y_norm))}</span>
            {rules}
            <span class="small">{format!("‖dx‖ {} ← ‖dy‖ {}", fmt(l.dx_norm), fmt(l.dy_norm))}</span>
            {grad_view}
        </button>
    }
}

/// One layer's numbers for one example of the batch.
#[component]
fn Detail(l: VjpLayer, batch: usize, example: RwSignal<usize>, target: Vec<f32>, last: bool) -> impl IntoView {
    let width = |s: &[usize]| s.iter().skip(1).product::<usize>();
    let rows = [
        ("x", "input x", l.x.clone(), width(&l.input)),
        ("y", "output y", l.y.clone(), width(&l.output)),
        ("dy", "dy = ∂L/∂y (from the layer after)", l.dy.clone(), width(&l.output)),
        ("dx", "dx = ∂L/∂x (to the layer before)", l.dx.clone(), width(&l.input)),
    ];
    let rows = rows
        .into_iter()
        .map(|(key, label, values, all)| {
            let cells = values.iter().map(|&v| view! { <span class="vjp-num">{fmt(v)}</span> }).collect_view();
            let more = (all > SHOWN).then(|| format!(" (the first {SHOWN} of {all})"));
            view! {
                <div class="vjp-row" id=format!("vjp-{key}") data-values=exact(&values)>
                    <span class="vjp-row-label">{label}{more}</span>
                    <span class="vjp-nums">{cells}</span>
                </div>
            }
        })
        .collect_view();
    let share = l.example_grad_norm.map(|g| {
        view! {
            <p class="small" id="vjp-example-grad" data-value=g.to_string()>
                {format!("This example's share of dW is the outer product xᵢᵀ·dyᵢ ({}×{}), of norm ‖xᵢ‖·‖dyᵢ‖ = {}; dW sums it over the batch.",
                    width(&l.input), width(&l.output), fmt(g))}
            </p>
        }
    });
    let on_example = move |ev| {
        let v: usize = event_target_value(&ev).parse().unwrap_or(0);
        example.set(v.min(batch.saturating_sub(1)));
    };
    view! {
        <div class="vjp-detail" id="vjp-detail">
            <h4>{format!("{}: one example", l.name)}</h4>
            <label for="vjp-example">{format!("example (0–{}) ", batch.saturating_sub(1))}</label>
            <input id="vjp-example" type="number" min="0" max=batch.saturating_sub(1).to_string() prop:value=move || example.get().to_string() on:change=on_example/>
            {last.then(|| view! { <span class="small muted">{format!(" target {}", target.iter().map(|&t| fmt(t)).collect::<Vec<_>>().join(", "))}</span> })}
            {rows}
            {share}
        </div>
    }
}
