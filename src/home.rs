//! The home page (the root URL, no query): the learning journey as cards — Fit a function → the
//! Playground → CNN → Batch Norm → RNN — each with an animated preview, what it teaches and how
//! long a first run takes; and the journey bar every lab page shows (where it sits, previous and
//! next). Both are built from [`PAGES`], the one list of lab pages.

use crate::labs::{Page, PAGES};
use leptos::prelude::*;

/// A small looping picture of what the lab shows (SVG + CSS animation: no worker, no script).
fn preview(key: &str) -> AnyView {
    match key {
        "fit" => view! {
            <svg class="preview" viewBox="0 0 160 90" role="img" aria-label="a curve bending onto sampled points">
                <path class="axis" d="M8 82 H152 M8 82 V8"/>
                {(0..12).map(|i| {
                    let x = 14.0 + i as f64 * 12.0;
                    let y = 45.0 - 28.0 * ((x - 14.0) / 132.0 * std::f64::consts::TAU).sin();
                    view! { <circle class="dot" cx=x cy=y r="2.4"/> }
                }).collect_view()}
                <path class="fit-curve" d="M14 45 C 47 45, 80 45, 146 45"/>
            </svg>
        }
        .into_any(),
        "playground" => view! {
            <svg class="preview" viewBox="0 0 160 90" role="img" aria-label="two classes of points and a boundary that turns around them">
                <rect class="region-a" x="0" y="0" width="160" height="90"/>
                <circle class="region-b" cx="80" cy="45" r="26"/>
                {(0..16).map(|i| {
                    let t = i as f64 / 16.0 * std::f64::consts::TAU;
                    view! {
                        <circle class="dot-b" cx=80.0 + 14.0 * t.cos() cy=45.0 + 14.0 * t.sin() r="2.4"/>
                        <circle class="dot-a" cx=80.0 + 36.0 * (t + 0.2).cos() cy=45.0 + 36.0 * (t + 0.2).sin() r="2.4"/>
                    }
                }).collect_view()}
            </svg>
        }
        .into_any(),
        "cnn" => view! {
            <svg class="preview" viewBox="0 0 160 90" role="img" aria-label="a filter sliding over a handwritten digit">
                {(0..64).map(|i| {
                    let (r, c) = (i / 8, i % 8);
                    // A rough "7".
                    let ink = r == 1 && (1..7).contains(&c) || (r >= 2 && c == 7 - r.min(6) + 1);
                    view! { <rect class:ink=ink class="pixel" x=10 + c * 9 y=8 + r * 9 width="8" height="8"/> }
                }).collect_view()}
                <rect class="filter" x="10" y="8" width="26" height="26"/>
                {(0..4).map(|i| view! { <rect class="fmap" x=104 + (i % 2) * 26 y=14 + (i / 2) * 34 width="22" height="28"/> }).collect_view()}
            </svg>
        }
        .into_any(),
        "batchnorm" => view! {
            <svg class="preview" viewBox="0 0 160 90" role="img" aria-label="two histograms: without batch norm it drifts and spreads, with it it stays centred">
                <path class="axis" d="M6 80 H74 M86 80 H154"/>
                {(0..9).map(|i| {
                    let h = 60.0 * (-((i as f64 - 4.0) / 2.0).powi(2)).exp() + 4.0;
                    view! {
                        <rect class="bar plain" x=8 + i * 7 y=80.0 - h width="6" height=h/>
                        <rect class="bar bn" x=88 + i * 7 y=80.0 - h width="6" height=h/>
                    }
                }).collect_view()}
                <text x="40" y="10" class="preview-label">"plain"</text>
                <text x="120" y="10" class="preview-label">"BN"</text>
            </svg>
        }
        .into_any(),
        _ => view! {
            <svg class="preview" viewBox="0 0 160 90" role="img" aria-label="a name read one character at a time through a chain of cells">
                {"Kowalski".chars().enumerate().map(|(i, ch)| view! {
                    <g class="rnn-cell" style:animation-delay=format!("{:.1}s", i as f64 * 0.35)>
                        <rect x=6 + i * 19 y="22" width="16" height="16" rx="3"/>
                        <text x=14 + i * 19 y="62" class="preview-char">{ch.to_string()}</text>
                    </g>
                }).collect_view()}
                <path class="axis" d="M22 30 H150"/>
                <text x="80" y="84" class="preview-label">"→ Polish"</text>
            </svg>
        }
        .into_any(),
    }
}

#[component]
pub fn Home() -> impl IntoView {
    let cards = PAGES
        .iter()
        .map(|p| {
            view! {
                <li class="journey-card" id=format!("card-{}", p.key)>
                    <a href=format!("?lab={}", p.key) class="card-link">
                        {preview(p.key)}
                        <h2>{p.nav}</h2>
                        <ul class="learn">{p.learn.iter().map(|l| view! { <li>{*l}</li> }).collect_view()}</ul>
                        <p class="first-run">"First run: "{p.first_run}</p>
                    </a>
                </li>
            }
        })
        .collect_view();
    view! {
        <div class="home">
            <div class="intro">
                <h1>"Learn deep learning by watching networks learn"</h1>
                <p>"Every lab trains a real network in your browser — no install, no server, no GPU needed. Change a setting while it runs and see what happens inside: weights, activations, gradients. Follow the path in order, or jump in anywhere; every experiment is a link you can share."</p>
            </div>
            <ol class="journey" id="journey">{cards}</ol>
        </div>
    }
}

/// Where a lab sits in the journey, with links to the previous and next labs.
#[component]
pub fn JourneyBar(key: &'static str) -> impl IntoView {
    let at = PAGES.iter().position(|p| p.key == key).unwrap_or(0);
    let link = |p: Option<&'static Page>, id: &'static str, arrow_first: bool| {
        p.map(|p| {
            let label = if arrow_first { format!("← {}", p.nav) } else { format!("{} →", p.nav) };
            view! { <a id=id href=format!("?lab={}", p.key)>{label}</a> }
        })
    };
    view! {
        <nav class="journey-bar" aria-label="the learning journey">
            <span class="prev">{link(at.checked_sub(1).map(|i| &PAGES[i]), "journey-prev", true)}</span>
            <span class="where">
                <a href="./" id="journey-home" title="every lab, in order">"The journey"</a>
                {format!(" · {}", PAGES[at].nav)}
            </span>
            <span class="next">{link(PAGES.get(at + 1), "journey-next", false)}</span>
        </nav>
    }
}
