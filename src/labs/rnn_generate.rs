//! The RNN lab's generation task: names sampled live at a temperature from a priming prefix,
//! each step's five likeliest next characters, the share of new names, and the dev loss against
//! the bigram and trigram baselines.

use super::rnn::config;
use super::rnn::with_view;
use crate::client::LabState;
use crate::components::chart::{palette, BLUE, GREEN, ORANGE};
use crate::components::controls::{Field, Select};
use crate::components::loss_chart::Measured;
use crate::components::LossChart;
use engine::data::names::LANGUAGES;
use engine::lab::rnn::Task;
use leptos::prelude::*;

/// The loss per character: every recorded mini-batch, the train mean and the dev loss at each
/// evaluation, and the bigram and trigram baselines, over the steps (the shared loss chart).
#[component]
fn NllChart(state: LabState) -> impl IntoView {
    let gen = move || with_view(&state, |v| v.gen.clone()).flatten();
    let measured = Signal::derive(move || {
        let Some(g) = gen() else { return Vec::new() };
        vec![
            Measured::curve("train (mean since last)", BLUE, g.history.iter().map(|p| (p.step as f64, p.train_nll as f64)).collect()),
            Measured::curve("dev", ORANGE, g.history.iter().map(|p| (p.step as f64, p.dev_nll as f64)).collect()),
            Measured::baseline("bigram (dev)", palette(3), g.bigram as f64),
            Measured::baseline("trigram (dev)", GREEN, g.trigram as f64),
        ]
    });
    let title = Signal::derive(move || {
        let stream = with_view(&state, |v| v.gen.as_ref().is_some_and(|g| g.new_share.is_nan())).unwrap_or(false);
        if stream { "Loss per character (dev: the last plays)" } else { "Loss per character (the end token counts)" }.to_string()
    });
    view! { <LossChart state title y_label="nats per character" evaluations=measured id="gen-nll-chart" log_y=false/> }
}

/// A character as the top-five lists show it (a newline or a space would be invisible).
fn shown(c: &str) -> &str {
    match c {
        "\n" => "⏎",
        " " => "␣",
        c => c,
    }
}

#[component]
pub fn Generation(state: LabState) -> impl IntoView {
    let stream = move || with_view(&state, |v| v.gen.as_ref().is_some_and(|g| g.new_share.is_nan())).unwrap_or(false);
    let passages = move || {
        with_view(&state, |v| {
            v.gen.as_ref().map(|g| {
                g.samples
                    .iter()
                    .map(|s| {
                        // The prime, then one span per drawn character titled with its step's top five.
                        let chars: Vec<char> = s.name.chars().collect();
                        let primed = chars.len().saturating_sub(s.steps.len());
                        let drawn = chars[primed..]
                            .iter()
                            .zip(&s.steps)
                            .map(|(c, top)| {
                                let options: Vec<String> = top.iter().map(|o| format!("{} {:.0}%", shown(&o.ch), o.p * 100.0)).collect();
                                view! { <span title=options.join(" · ")>{c.to_string()}</span> }
                            })
                            .collect_view();
                        view! { <li><pre class="passage"><b>{chars[..primed].iter().collect::<String>()}</b>{drawn}</pre></li> }
                    })
                    .collect_view()
            })
        })
        .flatten()
    };
    let samples = move || {
        with_view(&state, |v| {
            v.gen.as_ref().map(|g| {
                g.samples
                    .iter()
                    .map(|s| {
                        let steps = s
                            .steps
                            .iter()
                            .enumerate()
                            .map(|(i, top)| {
                                let options: Vec<String> =
                                    top.iter().map(|c| format!("{} {:.0}%", if c.ch == "." { "⏎" } else { c.ch.as_str() }, c.p * 100.0)).collect();
                                format!("step {}: {}", i + 1, options.join(" · "))
                            })
                            .collect::<Vec<_>>()
                            .join("\n");
                        view! {
                            <li class:new-name=s.is_new title=steps>
                                <code>{s.name.clone()}</code>
                                {if s.is_new { " (new)" } else { " (in the training set)" }}
                            </li>
                        }
                    })
                    .collect_view()
            })
        })
        .flatten()
    };
    let summary = move || {
        with_view(&state, |v| {
            v.gen.as_ref().map(|g| {
                let dev = g.history.last().map(|p| format!("{:.3}", p.dev_nll)).unwrap_or_else(|| "–".into());
                if g.new_share.is_nan() {
                    return format!(
                        "{} training · {} dev · {} test windows of 25 characters · dev loss {dev} nats per character (bigram {:.3}, trigram {:.3})",
                        v.sizes[0], v.sizes[1], v.sizes[2], g.bigram, g.trigram
                    );
                }
                format!(
                    "{} training · {} dev · {} test names · dev loss {dev} nats per character (bigram {:.3}, trigram {:.3}) · {:.0} % of these samples are new names",
                    v.sizes[0],
                    v.sizes[1],
                    v.sizes[2],
                    g.bigram,
                    g.trigram,
                    g.new_share * 100.0
                )
            })
        })
        .flatten()
        .unwrap_or_default()
    };
    view! {
        <div class="play-grid">
            <div class="card" id="samples">
                <h4 class="card-title">{move || if stream() { "Sampled passages, live" } else { "Sampled names, live" }}</h4>
                <Show when=move || config(&state).task == Task::Language>
                    <Select state key="lang" label="language" options=LANGUAGES.iter().map(|l| (l.to_string(), *l)).collect() help="the first input symbol: the network spells a surname of this language"/>
                </Show>
                <div class="pad-row">
                    <Field state key="temp" label="temperature" step="0.1" help="below 1: safer, more common names; above 1: wilder"/>
                    <Field state key="prime" kind="text" label="starts with" help="a priming prefix (empty: from scratch)"/>
                    <Field state key="samples" label="how many" step="1" help="names: 1 to 50; passages of Shakespeare: at most 5 are shown"/>
                </div>
                <Show when=stream fallback=move || view! {
                    <ol class="gen-samples" id="gen-samples">{samples}</ol>
                    <p class="muted small">"Hover a name for the five likeliest next characters at each step (⏎ = end of name). New samples are drawn after every evaluation."</p>
                }>
                    <ol class="gen-passages" id="gen-samples">{passages}</ol>
                    <p class="muted small">"Each passage starts from the prime (bold) and carries the network's state from character to character. Hover a character for the five likeliest at that step (⏎ = new line, ␣ = space)."</p>
                </Show>
                <p class="muted small" id="gen-summary">{summary}</p>
            </div>
            <div class="card"><NllChart state/></div>
        </div>
    }
}
