//! The lab's guided tour: a few short steps; "Try this" opens the step's link (the whole config)
//! and the page then says what to look at. Which steps were tried is kept in this browser.

use crate::client::{storage_get, storage_set};
use engine::lab::tours::tour;
use leptos::prelude::*;

fn tried_key(lab: &str) -> String {
    format!("deeply.tour.{lab}")
}

/// The steps tried in this browser (indices), and the one opened last (to show what to look at).
fn tried(lab: &str) -> (Vec<usize>, Option<usize>) {
    let done = storage_get(&tried_key(lab)).unwrap_or_default().split(',').filter_map(|s| s.parse().ok()).collect();
    let current = storage_get("deeply.tour.current").and_then(|c| c.strip_prefix(&format!("{lab}:")).and_then(|i| i.parse().ok()));
    (done, current)
}

#[component]
pub fn Tour(lab: &'static str) -> impl IntoView {
    let steps = tour(lab);
    let (done, current) = tried(lab);
    let count = done.iter().filter(|&&i| i < steps.len()).count();
    let try_step = move |i: usize| {
        let (mut done, _) = tried(lab);
        if !done.contains(&i) {
            done.push(i);
        }
        storage_set(&tried_key(lab), &done.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(","));
        storage_set("deeply.tour.current", &format!("{lab}:{i}"));
        if let Some(w) = web_sys::window() {
            let _ = w.location().set_search(&format!("?{}", steps[i].link));
        }
    };
    let items = steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let is_current = current == Some(i);
            let was_tried = done.contains(&i);
            view! {
                <li id=format!("tour-step-{i}") class:current=is_current class:tried=was_tried>
                    <div class="tour-head">
                        <b>{s.title}</b>
                        <button id=format!("tour-try-{i}") data-link=s.link on:click=move |_| try_step(i)
                            title="Opens this step's settings (its share link); press Play">
                            {if was_tried { "Try again" } else { "Try this" }}
                        </button>
                    </div>
                    <p class="tour-look">{s.look}</p>
                </li>
            }
        })
        .collect_view();
    view! {
        <details class="card tour" id="tour" open=current.is_some()>
            <summary>
                <b>"Guided tour"</b>
                <span class="muted small" id="tour-progress">{format!(" · {count} of {} steps tried", steps.len())}</span>
            </summary>
            <ol class="tour-steps">{items}</ol>
        </details>
    }
}
