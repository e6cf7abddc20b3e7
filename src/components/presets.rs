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

/// One story preset: `(id, title, story, link)`.
pub type Story = (&'static str, &'static str, &'static str, &'static str);

/// Presets as a row of chips; the active one's story below (the labs from 3 on).
#[component]
pub fn StoryPresets(state: LabState, presets: Vec<Story>) -> impl IntoView {
    let configs: Vec<_> = presets.iter().map(|p| parse_link(p.3).config).collect();
    let active = Memo::new(move |_| state.config.with(|c| configs.iter().position(|p| p == c)));
    let chips = presets
        .iter()
        .enumerate()
        .map(|(i, p)| view! { <a class="preset-chip" class:active=move || active.get() == Some(i) href=format!("?{}", p.3) id=format!("preset-{}", p.0)>{p.1}</a> })
        .collect_view();
    let story = move || {
        match active.get() {
        Some(i) => view! { <p class="preset-story" id="preset-story"><strong>{presets[i].1}": "</strong>{presets[i].2}</p> }.into_any(),
        None => view! { <p class="muted small" id="preset-story">"Each experiment is a share link: pick one to load its settings, then press Play. Its story appears here."</p> }.into_any(),
    }
    };
    view! {
        <div class="card" id="story-presets">
            <h4 class="card-title">"Experiments"</h4>
            <div class="preset-chips">{chips}</div>
            {story}
        </div>
    }
}
