//! Lab 4: a character RNN reads surnames and guesses their language. Type a name and watch the
//! guess after every prefix; see the gradient through time, the race of the per-name loop against
//! the batched layer, and the classifier beside a naive-Bayes baseline.

use super::cnn::LoadingBar;
use super::rnn_generate::Generation;
use super::rnn_panels::{AccuracyChart, Confusion, GradientThroughTime, RnnLossChart};
use crate::client::LabState;
use crate::components::controls::{options, Check, Field, SeedRow, Select};
use crate::components::diagnoses::Diagnoses;
use crate::components::presets::StoryPresets;
use crate::components::stats_bar::StatsBar;
use crate::components::Toolbar;
use crate::format::short;
use engine::lab::rnn::{Loop, RnnCommand, RnnConfig, RnnData, RnnView, Task, PRESETS};
use engine::lab::{LabCommand, View};
use engine::optim::{OptimizerKind, Schedule};
use leptos::prelude::*;

pub(super) fn config(state: &LabState) -> RnnConfig {
    state.config_as::<RnnConfig>().unwrap_or_default()
}

pub(super) fn with_view<R>(state: &LabState, f: impl FnOnce(&RnnView) -> R) -> Option<R> {
    state.snapshot.with(|s| match s.as_ref().map(|s| &s.view) {
        Some(View::Rnn(v)) => Some(f(v)),
        _ => None,
    })
}

/// What the paste box takes in each task: its summary, placeholder and help.
fn paste_hint(c: &RnnConfig) -> (&'static str, &'static str, &'static str) {
    match (c.task, c.data) {
        (Task::Classify, _) => (
            "paste your own names",
            "Smith,English\nRossi,Italian\n…",
            "One name,label per line (a tab works too). A bad line refuses the whole paste, with its line number; the data in use stays.",
        ),
        (_, RnnData::Play) => (
            "paste your own text",
            "Any text: a play, poems, code…",
            "At least 1,000 characters; cut into windows of 25 and split in order (the last tenth is the dev and test text). Characters outside the plays' alphabet become ·.",
        ),
        _ => (
            "paste your own names",
            "ava\nzoe\n…",
            "One name per line, at least 20 (cut at 24 characters). A line with a label or a bad line refuses the paste, with its line number; the data in use stays.",
        ),
    }
}

#[component]
fn RnnControls(state: LabState) -> impl IntoView {
    let pasted = RwSignal::new(String::new());
    let use_pasted = move |_| state.command(LabCommand::Rnn(RnnCommand::SetData { text: pasted.get_untracked() }));
    view! {
        <crate::components::ControlsDrawer>
            <section>
                <h3>"Data"</h3>
                <Select state key="task" label="task" options=options(&Task::ALL, Task::label) help="classify reads a name into a language; generate learns to spell names (baby names) and samples new ones"/>
                <Select state key="data" label="dataset" options=options(&RnnData::ALL, RnnData::label)/>
                <SeedRow state help="initial weights, the order of the batches and the 85/15 split" title="new weights, order and split from a new seed"/>
                <details class="lists" id="paste-data">
                    <summary class="muted small">{move || paste_hint(&config(&state)).0}</summary>
                    <textarea id="paste-names" rows="6" aria-label="pasted data" placeholder=move || paste_hint(&config(&state)).1 prop:value=move || pasted.get()
                        on:input=move |ev| pasted.set(event_target_value(&ev))></textarea>
                    <button id="paste-use" on:click=use_pasted>"Train on these"</button>
                    <p class="muted small">{move || paste_hint(&config(&state)).2}</p>
                </details>
            </section>
            <section>
                <h3>"Network"</h3>
                <Field state key="hidden" label="hidden units" step="1"/>
                <Select state key="init" label="W_hh init" options=vec![("normal".into(), "normal N(0, 1/hidden)"), ("xavier".into(), "Xavier / Glorot"), ("he".into(), "He / Kaiming"), ("zeros".into(), "zeros")]/>
                <Field state key="gain" label="W_hh gain" step="0.1" help="multiplies W_hh at the start: < 1 vanishing, > 1 exploding gradients through time"/>
                <Select state key="run" label="RNN layer" options=vec![("batched".into(), Loop::Batched.label()), ("loop".into(), Loop::Loop.label())] help="which implementation trains (the same maths)"/>
                <Check state key="race" label="race both every ~1 s"/>
            </section>
            <section>
                <h3>"Training"</h3>
                <Select state key="opt" label="optimizer" options=options(&OptimizerKind::ALL, OptimizerKind::label)/>
                <Field state key="lr" label="learning rate" step="0.0005"/>
                <Select state key="sched" label="schedule" options=options(&Schedule::ALL, Schedule::label)/>
                <Field state key="period" label="period T (steps)" step="100"/>
                <Field state key="bs" label="batch size" step="1"/>
                <Field state key="clip" label="clip ‖∇‖ at" step="0.5" help="0 = no clipping"/>
                <Field state key="truncate" label="truncate BPTT to" step="1" help="characters the gradient reaches back (0 = all)"/>
                <Field state key="l2" label="L2" step="0.0001"/>
            </section>
            <section>
                <h3>"Evaluate & stop"</h3>
                <Field state key="eval" label="evaluate every (steps)" step="100" help="validation and test names; also at every epoch's end"/>
                <Field state key="patience" label="early stop after" step="1" help="epochs without a better validation accuracy (0 = off)"/>
                <Field state key="epochs" label="stop after epochs" step="1" help="0 = off"/>
                <Field state key="stop" label="stop at step" step="1" help="0 = off"/>
            </section>
        </crate::components::ControlsDrawer>
    }
}

/// Type a name: the top three languages, and the best guess after every prefix.
#[component]
fn TypeAName(state: LabState) -> impl IntoView {
    let top = move || {
        with_view(&state, |v| {
            v.probe
                .top
                .iter()
                .enumerate()
                .map(|(i, g)| {
                    view! {
                        <div class="guess" id=format!("guess-{i}")>
                            <span class="guess-class">{g.class.clone()}</span>
                            <span class="guess-bar"><span style:width=format!("{:.1}%", g.p * 100.0)></span></span>
                            <span class="guess-p" data-p=g.p.to_string()>{format!("{:.1} %", g.p * 100.0)}</span>
                        </div>
                    }
                })
                .collect_view()
        })
    };
    let prefixes = move || {
        with_view(&state, |v| {
            let chars: Vec<char> = v.probe.name.chars().collect();
            v.probe
                .prefixes
                .iter()
                .enumerate()
                .map(|(i, g)| {
                    let prefix: String = chars[..(i + 1).min(chars.len())].iter().collect();
                    view! { <li><code>{prefix}</code>" → "{g.class.clone()}{format!(" {:.0} %", g.p * 100.0)}</li> }
                })
                .collect_view()
        })
    };
    view! {
        <div class="card" id="type-a-name">
            <h4 class="card-title">"Type a name"</h4>
            <input id="probe-name" type="text" aria-label="a name to classify" maxlength="100" prop:value=move || state.value_of("name")
                on:input=move |ev| state.set_value("name", &event_target_value(&ev))/>
            <p class="muted small">"The current weights' top three guesses, live as it trains."</p>
            <div class="guesses">{top}</div>
            <h5>"The guess after each prefix"</h5>
            <ol class="prefixes" id="prefixes">{prefixes}</ol>
        </div>
    }
}

#[component]
fn RacePanel(state: LabState) -> impl IntoView {
    let body = move || {
        match with_view(&state, |v| v.race.clone()).flatten() {
        None => view! { <p class="muted small" id="race-empty">"Press Play (or “Race now”): the current mini-batch goes through the RNN layer one name at a time and all at once, forward and backward."</p> }.into_any(),
        Some(r) => {
            let slow = r.loop_ms.max(1e-9);
            view! {
                <div class="race-bars">
                    <div class="race-row"><span class="race-name">"one name at a time"</span>
                        <span class="race-bar naive"><span style:width="100%"></span></span>
                        <span class="race-ms" id="race-loop-ms" data-ms=r.loop_ms.to_string()>{format!("{:.2} ms", r.loop_ms)}</span></div>
                    <div class="race-row"><span class="race-name">"batched"</span>
                        <span class="race-bar fast"><span style:width=format!("{:.2}%", (r.batched_ms / slow * 100.0).clamp(0.5, 100.0))></span></span>
                        <span class="race-ms" id="race-batched-ms" data-ms=r.batched_ms.to_string()>{format!("{:.2} ms", r.batched_ms)}</span></div>
                </div>
                <p class="race-summary">
                    <strong id="race-speedup">{format!("{:.1}× faster", r.loop_ms / r.batched_ms.max(1e-3))}</strong>
                    " · largest |difference| of the weight gradients "<span id="race-diff" data-diff=r.max_grad_diff.to_string()>{short(r.max_grad_diff)}</span>
                    {format!(" · outputs {} · batch of {} at step {}", short(r.max_out_diff), r.batch, r.step)}
                </p>
            }
            .into_any()
        }
    }
    };
    view! {
        <div class="card race" id="race">
            <h4 class="card-title">"The race: one name at a time vs the whole batch (RNN layer, forward + backward)"</h4>
            {body}
            <div class="pad-row">
                <button id="race-now" on:click=move |_| state.command(LabCommand::Rnn(RnnCommand::Race))>"Race now"</button>
                <span class="muted small">"Same maths. The loop multiplies one hidden vector by W_hh per character; batched, each time step is one matrix product for every name of the batch (shorter names are padded and masked)."</span>
            </div>
        </div>
    }
}

#[component]
pub fn RnnLab(state: LabState) -> impl IntoView {
    let eval_progress = move || with_view(&state, |v| v.eval_progress).unwrap_or(0.0);
    let summary = move || {
        with_view(&state, |v| {
            let best = v.best.as_ref().map(|b| format!("best epoch {} (validation {:.1} %, test {:.1} %)", b.epoch, b.val_accuracy * 100.0, b.test_accuracy * 100.0));
            format!(
                "{} training · {} validation · {} test names{} · naive Bayes (character 1–3-grams) on the same split: {:.1} % test accuracy, {:.1} % balanced{}",
                v.sizes[0],
                v.sizes[1],
                v.sizes[2],
                if v.custom { " (pasted)" } else { "" },
                v.baseline[0] * 100.0,
                v.baseline[1] * 100.0,
                best.map(|b| format!(" · {b}")).unwrap_or_default()
            )
        })
        .unwrap_or_default()
    };
    view! {
        <div class="lab">
            <RnnControls state/>
            <section class="workspace">
                <LoadingBar state/>
                <Toolbar state/>
                <Diagnoses state/>
                <StatsBar state/>
                <Show when=move || { eval_progress() > 0.0 }>
                    <p class="muted small" id="eval-progress">{move || format!("evaluating… {:.0}%", eval_progress() * 100.0)}</p>
                </Show>
                <StoryPresets state presets=PRESETS.iter().map(|p| (p.id, p.title, p.story, p.link)).collect()/>
                <Show when=move || config(&state).task != Task::Classify fallback=move || view! {
                    <p class="muted small" id="data-summary">{summary}</p>
                    <div class="play-grid">
                        <TypeAName state/>
                        <GradientThroughTime state/>
                    </div>
                    <RacePanel state/>
                    <div class="charts chart-pair">
                        <div class="card"><RnnLossChart state/></div>
                        <div class="card"><AccuracyChart state/></div>
                    </div>
                    <Confusion state/>
                }>
                    <Generation state/>
                </Show>
                <crate::components::TimeTravel state/>
            </section>
        </div>
    }
}
