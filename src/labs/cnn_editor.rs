//! The CNN's layers as rows of small controls: add or remove conv and dense layers, change each
//! layer's filters, kernel, padding and pooling. Every change goes through the link keys
//! (`filters`, `kernel`, `pad`, `pool`, `dense`), validated like a link.

use crate::client::LabState;
use engine::lab::cnn::{CnnConfig, MAX_CONV, MAX_DENSE, MAX_FILTERS, MAX_UNITS};
use engine::lab::LabConfig;
use leptos::prelude::*;

fn config(state: &LabState) -> CnnConfig {
    match state.config.get() {
        LabConfig::Cnn(c) => c,
        _ => CnnConfig::default(),
    }
}

fn list(v: &[usize]) -> String {
    v.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(",")
}

/// Writes the conv layers: the per-layer lists first and `filters` (the layer count) last, so
/// that every intermediate config is valid.
/// Keys whose lists did not change are not sent (each change rebuilds the run).
fn set_convs(state: &LabState, convs: &[(usize, usize, usize, usize)]) {
    type Conv = (usize, usize, usize, usize);
    let current = config(state).convs();
    let fields: [(&str, fn(&Conv) -> usize); 4] = [("filters", |c| c.0), ("kernel", |c| c.1), ("pad", |c| c.2), ("pool", |c| c.3)];
    let mut changes: Vec<(&str, String)> = fields
        .iter()
        .filter_map(|(key, f)| {
            let new = list(&convs.iter().map(f).collect::<Vec<_>>());
            (new != list(&current.iter().map(f).collect::<Vec<_>>())).then(|| (*key, new))
        })
        .collect();
    if convs.len() > current.len() {
        changes.rotate_left(1); // filters last when growing
    }
    for (key, value) in changes {
        state.set_value(key, &value);
    }
}

/// A small select bound to `value` (re-read after a refused change, so it shows what is kept).
fn choice(
    id: String,
    name: String,
    value: impl Fn() -> usize + Copy + Send + Sync + 'static,
    values: std::ops::RangeInclusive<usize>,
    label: fn(usize) -> String,
    on: impl Fn(usize) + 'static,
) -> impl IntoView {
    let options = values.map(|v| view! { <option value=v.to_string() selected=move || value() == v>{label(v)}</option> }).collect_view();
    view! {
        <select id=id class="mini" aria-label=name prop:value=move || value().to_string()
            on:change=move |ev| on(event_target_value(&ev).parse().unwrap_or_else(|_| value()))>{options}</select>
    }
}

#[component]
pub fn LayerEditor(state: LabState) -> impl IntoView {
    let convs = move || config(&state).convs();
    let dense = move || config(&state).dense;
    let edit = move |i: usize, f: Box<dyn Fn(&mut (usize, usize, usize, usize))>| {
        let mut c = convs();
        f(&mut c[i]);
        set_convs(&state, &c);
    };
    let conv_rows = move || {
        convs()
            .into_iter()
            .enumerate()
            .map(|(i, (filters, _, _, _))| {
                let at = move |f: fn(&(usize, usize, usize, usize)) -> usize| move || convs().get(i).map(f).unwrap_or(1);
                view! {
                    <div class="layer-row conv-row">
                        <span class="layer-name">{format!("conv {}", i + 1)}</span>
                        <button class="small-btn" id=format!("conv-minus-{i}") disabled={filters <= 1}
                            on:click=move |_| edit(i, Box::new(|c| c.0 = c.0.saturating_sub(if c.0 > 8 { 4 } else { 1 }).max(1)))>"−"</button>
                        <span class="filters">{format!("{filters} filters")}</span>
                        <button class="small-btn" id=format!("conv-plus-{i}") disabled={filters >= MAX_FILTERS}
                            on:click=move |_| edit(i, Box::new(|c| c.0 = (c.0 + if c.0 >= 8 { 4 } else { 1 }).min(MAX_FILTERS)))>"+"</button>
                    </div>
                    <div class="layer-row conv-opts">
                        {choice(format!("conv-kernel-{i}"), format!("conv {} kernel size", i + 1), at(|c| c.1), 1..=9, |v| format!("{v}×{v}"), move |v| edit(i, Box::new(move |c| c.1 = v)))}
                        {choice(format!("conv-pad-{i}"), format!("conv {} padding", i + 1), at(|c| c.2), 0..=4, |v| format!("pad {v}"), move |v| edit(i, Box::new(move |c| c.2 = v)))}
                        {choice(format!("conv-pool-{i}"), format!("conv {} pooling window", i + 1), at(|c| c.3.max(1)), 1..=7, |v| if v <= 1 { "no pool".into() } else { format!("pool {v}") }, move |v| edit(i, Box::new(move |c| c.3 = v)))}
                    </div>
                }
            })
            .collect_view()
    };
    let set_dense = move |d: Vec<usize>| state.set_value("dense", &list(&d));
    let dense_rows = move || {
        dense()
            .into_iter()
            .enumerate()
            .map(|(i, units)| {
                view! {
                    <div class="layer-row">
                        <span class="layer-name">{format!("dense {}", i + 1)}</span>
                        <button class="small-btn" id=format!("dense-minus-{i}") disabled={units <= 1}
                            on:click=move |_| { let mut d = dense(); d[i] = (d[i] / 2).max(1); set_dense(d) }>"÷2"</button>
                        <span class="filters">{format!("{units} units")}</span>
                        <button class="small-btn" id=format!("dense-plus-{i}") disabled={units >= MAX_UNITS}
                            on:click=move |_| { let mut d = dense(); d[i] = (d[i] * 2).min(MAX_UNITS); set_dense(d) }>"×2"</button>
                    </div>
                }
            })
            .collect_view()
    };
    view! {
        <div class="network-editor" id="layer-editor">
            <div class="layer-row">
                <strong>{move || format!("{} conv layers", convs().len())}</strong>
                <button class="small-btn" id="conv-layers-minus" disabled=move || { convs().len() <= 1 }
                    on:click=move |_| { let mut c = convs(); c.pop(); set_convs(&state, &c) }>"−"</button>
                <button class="small-btn" id="conv-layers-plus" disabled=move || { convs().len() >= MAX_CONV }
                    on:click=move |_| { let mut c = convs(); c.push((16, 3, 1, 2)); set_convs(&state, &c) }>"+"</button>
            </div>
            {conv_rows}
            <div class="layer-row">
                <strong>{move || format!("{} hidden dense", dense().len())}</strong>
                <button class="small-btn" id="dense-layers-minus" disabled=move || { dense().is_empty() }
                    on:click=move |_| { let mut d = dense(); d.pop(); set_dense(d) }>"−"</button>
                <button class="small-btn" id="dense-layers-plus" disabled=move || { dense().len() >= MAX_DENSE }
                    on:click=move |_| { let mut d = dense(); d.push(64); set_dense(d) }>"+"</button>
            </div>
            {dense_rows}
            <p class="muted small">"then dense → 10 classes"</p>
        </div>
    }
}
