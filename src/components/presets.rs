//! Pitfall presets: each opens its share link; the one matching the current config is marked and
//! its story shown.

use crate::client::LabState;
use engine::lab::parse_link;
use engine::lab::presets::Preset;
use leptos::prelude::*;

#[component]
pub fn Presets(state: LabState, presets: &'static [Preset]) -> impl IntoView {
    let cards = presets
        .iter()
        .map(|p| {
            let config = parse_link(p.link).config;
            let active = move || state.config.with(|c| *c == config);
            view! {
                <a class="preset" class:active=active href=format!("?{}", p.link) id=format!("preset-{}", p.id)>
                    <strong>{p.title}</strong>
                    <span>{p.story}</span>
                </a>
            }
        })
        .collect_view();
    view! { <div class="presets">{cards}</div> }
}
