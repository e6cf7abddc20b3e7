//! Light and dark: the page follows the system's colour scheme until the toggle picks one, and
//! the choice is remembered. The theme is an attribute on <html> (`data-theme`), which the
//! stylesheet reads; chart canvases are drawn light and inverted by CSS in the dark.

use crate::client::{storage_get, storage_set};
use leptos::prelude::*;
use wasm_bindgen::prelude::*;

const KEY: &str = "deeply.theme";

#[derive(Clone, Copy, PartialEq)]
enum Choice {
    System,
    Dark,
    Light,
}

impl Choice {
    fn load() -> Choice {
        match storage_get(KEY).as_deref() {
            Some("dark") => Choice::Dark,
            Some("light") => Choice::Light,
            _ => Choice::System,
        }
    }

    fn key(self) -> &'static str {
        match self {
            Choice::System => "system",
            Choice::Dark => "dark",
            Choice::Light => "light",
        }
    }

    fn next(self) -> Choice {
        match self {
            Choice::System => Choice::Dark,
            Choice::Dark => Choice::Light,
            Choice::Light => Choice::System,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Choice::System => "◐ system",
            Choice::Dark => "☾ dark",
            Choice::Light => "☀ light",
        }
    }
}

fn system_dark() -> bool {
    web_sys::window().and_then(|w| w.match_media("(prefers-color-scheme: dark)").ok().flatten()).is_some_and(|m| m.matches())
}

fn apply(choice: Choice) {
    let dark = match choice {
        Choice::System => system_dark(),
        Choice::Dark => true,
        Choice::Light => false,
    };
    if let Some(root) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.document_element()) {
        let _ = root.set_attribute("data-theme", if dark { "dark" } else { "light" });
    }
}

/// The toggle in the top bar; also applies the remembered theme and follows system changes.
#[component]
pub fn ThemeToggle() -> impl IntoView {
    let choice = RwSignal::new(Choice::load());
    apply(choice.get_untracked());
    if let Some(query) = web_sys::window().and_then(|w| w.match_media("(prefers-color-scheme: dark)").ok().flatten()) {
        let follow = Closure::<dyn Fn()>::new(move || {
            if choice.get_untracked() == Choice::System {
                apply(Choice::System);
            }
        });
        query.set_onchange(Some(follow.as_ref().unchecked_ref()));
        follow.forget(); // as long as the page
    }
    let toggle = move |_| {
        let next = choice.get_untracked().next();
        choice.set(next);
        storage_set(KEY, next.key());
        apply(next);
    };
    view! {
        <button id="theme-toggle" class="theme-toggle" on:click=toggle
            title="Colour theme: follows the system, or always dark, or always light (remembered)"
            aria-label=move || format!("colour theme: {} (press to change)", choice.get().key())>
            {move || choice.get().label()}
        </button>
    }
}
