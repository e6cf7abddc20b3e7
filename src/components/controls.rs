//! Config controls. Each is bound to one link key: it shows the config's value and sends changes
//! through `LabState::set_value`, which validates them exactly like a share link.

use crate::client::LabState;
use leptos::prelude::*;

/// Why the last value typed for `key` was refused, shown under its control (until a value of
/// that key is accepted).
#[component]
fn FieldError(state: LabState, key: &'static str) -> impl IntoView {
    let message = move || state.notices.with(|n| n.iter().rev().find(|x| x.key == key).map(|x| x.message.clone()));
    view! {
        <Show when=move || message().is_some()>
            <span class="field-error" id=format!("err-{key}") role="alert">{message}</span>
        </Show>
    }
}

/// A number (or free text) field.
#[component]
pub fn Field(
    state: LabState,
    key: &'static str,
    label: &'static str,
    #[prop(default = "any")] step: &'static str,
    #[prop(default = "number")] kind: &'static str,
    #[prop(default = "")] help: &'static str,
) -> impl IntoView {
    view! {
        <label class="field" title=super::why::title(key, help) style:display=move || if state.hidden(key) { "none" } else { "" }>
            <span>{label}</span>
            <input id=format!("ctl-{key}") type=kind step=step
                prop:value=move || state.value_of(key)
                on:change=move |ev| state.set_value(key, &event_target_value(&ev))/>
            <FieldError state key/>
        </label>
    }
}

/// A drop-down of `(value, label)` options.
#[component]
pub fn Select(
    state: LabState,
    key: &'static str,
    label: &'static str,
    options: Vec<(String, &'static str)>,
    #[prop(default = "")] help: &'static str,
) -> impl IntoView {
    // Long option texts ("sin(x) on [−π, π]", "normal N(0, 1/hidden)") get the full width under
    // their label instead of being cut off beside it.
    let stacked = options.iter().any(|(_, text)| text.chars().count() > 18);
    let items = options
        .into_iter()
        .map(|(value, text)| {
            let v = value.clone();
            view! { <option value=value selected=move || state.value_of(key) == v>{text}</option> }
        })
        .collect_view();
    view! {
        <label class="field" class:stacked=stacked title=super::why::title(key, help) style:display=move || if state.hidden(key) { "none" } else { "" }>
            <span>{label}</span>
            <select id=format!("ctl-{key}")
                prop:value=move || state.value_of(key)
                on:change=move |ev| state.set_value(key, &event_target_value(&ev))>
                {items}
            </select>
            <FieldError state key/>
        </label>
    }
}

/// A checkbox for a boolean key.
#[component]
pub fn Check(state: LabState, key: &'static str, label: &'static str, #[prop(default = "")] help: &'static str) -> impl IntoView {
    view! {
        <label class="field check" title=super::why::title(key, help) style:display=move || if state.hidden(key) { "none" } else { "" }>
            <input id=format!("ctl-{key}") type="checkbox"
                prop:checked=move || state.value_of(key) == "true"
                on:change=move |ev| state.set_value(key, if event_target_checked(&ev) { "true" } else { "false" })/>
            <span>{label}</span>
            <FieldError state key/>
        </label>
    }
}

/// The serde name of an enum value (its link value).
pub fn link_value<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v).ok().and_then(|j| j.as_str().map(str::to_string)).unwrap_or_default()
}

/// Select options for every value of an enum: `(link value, label)`.
pub fn options<T: serde::Serialize + Copy>(all: &[T], label: fn(T) -> &'static str) -> Vec<(String, &'static str)> {
    all.iter().map(|&v| (link_value(&v), label(v))).collect()
}

/// The `seed` field with a button that draws a new random seed (which resets the run, as a new
/// seed typed in does). `help`: what the seed drives, in this lab; `title`: the button's.
#[component]
pub fn SeedRow(
    state: LabState,
    #[prop(default = "")] help: &'static str,
    #[prop(default = "new initial weights and order from a new seed")] title: &'static str,
    #[prop(default = "regenerate")] id: &'static str,
) -> impl IntoView {
    let new_seed = move |_| state.set_value("seed", &((js_sys::Math::random() * 1e9) as u64).to_string());
    view! {
        <div class="seed-row">
            <Field state key="seed" label="seed" step="1" help/>
            <button id=id title=title on:click=new_seed>"new"</button>
        </div>
    }
}
