//! The app shell: reads the link, picks the lab, shows notices about the link, and wires the
//! keyboard shortcuts.

use crate::client::LabState;
use crate::home::{Home, JourneyBar};
use crate::labs::bench::BenchPage;
use crate::labs::PAGES;
use crate::share;
use engine::lab::parse_link;
use leptos::prelude::*;
use wasm_bindgen::JsCast;

/// Notices listed at once; the rest are counted.
const MAX_NOTICES_SHOWN: usize = 8;

#[component]
pub fn App() -> impl IntoView {
    let href = share::current_href();
    let pairs = engine::lab::link::query_pairs(&href);
    if pairs.iter().any(|(k, v)| k == "lab" && v == "bench") {
        let get = |key: &str| pairs.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        let workload = get("workload").unwrap_or_else(|| "w1".into());
        let seconds = get("seconds").and_then(|s| s.parse().ok()).unwrap_or(3.0);
        let backend = get("backend").unwrap_or_else(|| "cpu".into());
        let workers = get("workers");
        return view! {
            <header class="topbar"><div class="brand">"Deeply"<span class="tagline">"benchmark"</span></div></header>
            <main><BenchPage workload seconds backend workers batch=get("batch")/></main>
        }
        .into_any();
    }
    if pairs.is_empty() {
        // The root URL: the journey.
        return view! {
            <header class="topbar">
                <a class="brand" href="./">"Deeply"<span class="tagline">"deep learning, trained live in your browser"</span></a>
                <nav>{PAGES.iter().map(|p| view! { <a href=format!("?lab={}", p.key) id=format!("nav-{}", p.key)>{p.nav}</a> }).collect_view()}</nav>
                <crate::theme::ThemeToggle/>
            </header>
            <main><Home/></main>
        }
        .into_any();
    }
    let parsed = parse_link(&href);
    let lab = parsed.config.lab();
    let state = LabState::new(parsed.config, parsed.notices, parsed.hidden_controls, parsed.speed, parsed.backend, parsed.fork, parsed.workers);

    let shortcuts = RwSignal::new(false);
    let handle = window_event_listener(leptos::ev::keydown, move |ev: web_sys::KeyboardEvent| {
        let tag = ev.target().and_then(|t| t.dyn_into::<web_sys::Element>().ok()).map(|e| e.tag_name()).unwrap_or_default();
        let typing = matches!(tag.as_str(), "INPUT" | "SELECT" | "TEXTAREA");
        if typing || ev.ctrl_key() || ev.meta_key() || ev.alt_key() {
            return;
        }
        match ev.key().as_str() {
            // Space on a focused button, link or summary presses that (the browser's own action).
            " " if matches!(tag.as_str(), "BUTTON" | "A" | "SUMMARY" | "LABEL") => {}
            " " => {
                ev.prevent_default();
                state.toggle_play();
            }
            "s" => state.step_once(),
            "r" => state.reset(),
            "?" => shortcuts.update(|s| *s = !*s),
            "Escape" => shortcuts.set(false),
            _ => {}
        }
    });
    on_cleanup(move || handle.remove());

    // A bounded list: a link with thousands of bad keys shows the first few and a count.
    let notices = move || {
        state.notices.with(|n| {
            // Time travel's refusals show in its panel.
            let n: Vec<&engine::lab::Notice> = n.iter().filter(|n| n.key != "timeline").collect();
            let shown = n.iter().take(MAX_NOTICES_SHOWN).map(|n| view! { <li><code>{n.key.clone()}</code>": "{n.message.clone()}</li> }).collect_view();
            let more = (n.len() > MAX_NOTICES_SHOWN).then(|| view! { <li id="notices-more">{format!("… and {} more", n.len() - MAX_NOTICES_SHOWN)}</li> });
            (shown, more)
        })
    };

    view! {
        <header class="topbar">
            <a class="brand" href="./" title="the journey: every lab">"Deeply"<span class="tagline">"deep learning, trained live in your browser"</span></a>
            <nav>
                {PAGES
                    .iter()
                    .map(|p| view! { <a class:active=lab == p.key href=format!("?lab={}", p.key) id=format!("nav-{}", p.key)>{p.nav}</a> })
                    .collect_view()}
            </nav>
            <crate::theme::ThemeToggle/>
        </header>
        <Show when=move || state.notices.with(|n| n.iter().any(|n| n.key != "timeline"))>
            <div class="notices" id="notices" role="alert">
                <div>
                    <strong>"Some settings could not be used; defaults were kept:"</strong>
                    <ul>{notices}</ul>
                </div>
                <button class="ghost" on:click=move |_| state.notices.set(Vec::new()) title="dismiss">"✕"</button>
            </div>
        </Show>
        <Show when=move || shortcuts.get()>
            <div class="shortcuts-backdrop" on:click=move |_| shortcuts.set(false)>
                <div class="shortcuts" id="shortcuts" role="dialog" aria-modal="true" aria-labelledby="shortcuts-title" on:click=|ev| ev.stop_propagation()>
                    <h2 id="shortcuts-title">"Keyboard shortcuts"</h2>
                    <dl>
                        <dt><kbd>"space"</kbd></dt><dd>"play / pause (on a focused button: press that button)"</dd>
                        <dt><kbd>"s"</kbd></dt><dd>"one training step, then pause"</dd>
                        <dt><kbd>"r"</kbd></dt><dd>"reset: the same seed, the same initial weights"</dd>
                        <dt><kbd>"?"</kbd></dt><dd>"show or hide this list"</dd>
                        <dt><kbd>"Esc"</kbd></dt><dd>"close it"</dd>
                        <dt><kbd>"Tab"</kbd></dt><dd>"move between controls (the focused one is outlined)"</dd>
                    </dl>
                    <button id="shortcuts-close" on:click=move |_| shortcuts.set(false)>"Close"</button>
                </div>
            </div>
        </Show>
        <main>
            {PAGES.iter().find(|p| p.key == lab).map(|p| {
                view! {
                    <JourneyBar key=p.key/>
                    <div class="intro">
                        <h1>{p.title}</h1>
                        <p>{p.intro}</p>
                    </div>
                    {(!engine::lab::tours::tour(p.key).is_empty()).then(|| view! { <crate::components::Tour lab=p.key/> })}
                    {(p.view)(state)}
                }
            })}
        </main>
    }
    .into_any()
}
