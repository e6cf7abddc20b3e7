//! Time travel, in every lab: a scrubber over the run's checkpoints, "go back" (Play then repeats
//! the run bit for bit), and a fork — one training value changed at a checkpoint, both branches
//! trained on the same batches, their curves side by side, and either kept.

use crate::client::LabState;
use crate::components::chart::{self, ChartSpec, Series, BLUE, GREEN};
use crate::components::why::why;
use engine::lab::timeline::ForkSpec;
use leptos::html;
use leptos::prelude::*;

/// The values a fork may change (those of the lab's live keys that shape training).
const FORK_KEYS: [&str; 10] = ["lr", "mom", "l2", "reg", "regrate", "clip", "bs", "opt", "sched", "period"];

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

#[component]
pub fn TimeTravel(state: LabState) -> impl IntoView {
    let checkpoints = Memo::new(move |_| state.timeline.with(|t| t.checkpoints.clone()));
    // The scrubber's position: an index into the checkpoints (the latest when it was never moved).
    let picked = RwSignal::new(None::<usize>);
    let at = Memo::new(move |_| {
        let c = checkpoints.get();
        let i = picked.get().unwrap_or(usize::MAX).min(c.len().saturating_sub(1));
        c.get(i).copied()
    });
    let keys = Memo::new(move |_| {
        let live = state.config.with(|c| c.live_keys());
        FORK_KEYS.iter().filter(|k| live.contains(k)).map(|k| k.to_string()).collect::<Vec<_>>()
    });
    let key = RwSignal::new("lr".to_string());
    let value = RwSignal::new(String::new());
    let summary = move || {
        state.timeline.with(|t| match (&t.off, t.checkpoints.len()) {
            (Some(off), _) => off.clone(),
            (None, n) => format!("{n} checkpoints, {} of at most {}", mb(t.bytes), mb(t.cap)),
        })
    };
    let go_back = move |_| {
        if let Some(step) = at.get_untracked() {
            state.notices.update(|n| n.retain(|x| x.key != "timeline"));
            state.rewind(step);
        }
    };
    let fork = move |_| {
        let Some(step) = at.get_untracked() else { return };
        let k = key.get_untracked();
        let v = value.get_untracked();
        let v = if v.trim().is_empty() { state.value_of(&k) } else { v };
        state.notices.update(|n| n.retain(|x| x.key != "timeline"));
        state.fork_at(ForkSpec { at: step, key: k, value: v });
    };
    let forked = move || state.timeline.with(|t| t.branch.as_ref().map(|b| (b.spec.clone(), b.diverged)));
    let refused = move || state.notices.with(|n| n.iter().rev().find(|x| x.key == "timeline").map(|x| x.message.clone()));
    let pending = move || state.timeline.with(|t| t.pending.clone());
    let steps_attr = move || checkpoints.get().iter().map(|s| s.to_string()).collect::<Vec<_>>().join(",");
    let scrub_max = move || checkpoints.get().len().saturating_sub(1).to_string();
    let scrub_value = move || picked.get().unwrap_or(usize::MAX).min(checkpoints.get().len().saturating_sub(1)).to_string();
    view! {
        <div class="card time-travel" id="time-travel">
            <h3 title="Checkpoints of the whole run (weights, optimiser state, data order, random streams): going back and pressing Play repeats the run bit for bit">"Time travel"</h3>
            <p class="muted small" id="timeline-summary">{summary}</p>
            <div class="scrub-row">
                <label for="scrub">"checkpoint"</label>
                <input id="scrub" type="range" min="0" max=scrub_max prop:value=scrub_value
                    data-steps=steps_attr
                    disabled=move || checkpoints.get().is_empty()
                    on:input=move |ev| picked.set(event_target_value(&ev).parse().ok())/>
                <output id="scrub-step" for="scrub">{move || at.get().map_or("–".to_string(), |s| format!("step {s}"))}</output>
                <button id="rewind" disabled=move || at.get().is_none() on:click=go_back
                    title="Continue from this checkpoint: Play repeats what followed, bit for bit (change a value first to see another future)">
                    "Go back here"
                </button>
            </div>
            <div class="fork-row">
                <label for="fork-key">"fork: B sets"</label>
                <select id="fork-key" on:change=move |ev| {
                    key.set(event_target_value(&ev));
                    value.set(String::new());
                }>
                    {move || keys.get().into_iter().map(|k| {
                        let selected = k == key.get_untracked();
                        view! { <option value=k.clone() selected=selected title=why(&k)>{k.clone()}</option> }
                    }).collect_view()}
                </select>
                <label for="fork-value" class="visually-hidden">"B's value"</label>
                <input id="fork-value" size="8" prop:value=move || value.get()
                    placeholder=move || state.value_of(&key.get())
                    on:input=move |ev| value.set(event_target_value(&ev))/>
                <button id="fork" disabled=move || at.get().is_none() on:click=fork
                    title="Train two branches from this checkpoint on the same mini-batches: A as it is, B with this one value changed">
                    {move || at.get().map_or("Fork".to_string(), |s| format!("Fork at step {s}"))}
                </button>
            </div>
            {move || refused().map(|m| view! { <p class="field-error" id="err-timeline" role="alert">{m}</p> })}
            {move || pending().map(|p| view! {
                <p class="small" id="fork-pending">{format!("This link forks at step {}: B sets {} = {}.", p.at, p.key, p.value)}</p>
            })}
            {move || forked().map(|(spec, diverged)| view! {
                <div class="fork-status" id="fork-status">
                    <span>
                        <b class="series-a">"A"</b>{format!(": {} = {} · ", spec.key, state.value_of(&spec.key))}
                        <b class="series-b">"B"</b>{format!(": {} = {} · forked at step {}", spec.key, spec.value, spec.at)}
                        {diverged.then_some(" · B diverged")}
                    </span>
                    <button id="keep-a" on:click=move |_| state.keep(false) title="End the fork: the run goes on as A">"Keep A"</button>
                    <button id="keep-b" on:click=move |_| state.keep(true) title="End the fork: B becomes the run (its link starts from its values)">"Keep B"</button>
                </div>
                <ForkChart state at=spec.at/>
            })}
        </div>
    }
}

/// A's and B's mini-batch losses since the fork, on one chart.
#[component]
fn ForkChart(state: LabState, at: u64) -> impl IntoView {
    let canvas = NodeRef::<html::Canvas>::new();
    Effect::new(move |_| {
        let Some(canvas) = canvas.get() else { return };
        let a: Vec<(f64, f64)> = state.records.with(|r| r.iter().filter(|p| p.step >= at).map(|p| (p.step as f64, p.loss as f64)).collect());
        let b: Vec<(f64, f64)> = state.branch.with(|r| r.iter().filter(|p| p.0 >= at).map(|&(s, l)| (s as f64, l as f64)).collect());
        let last = a.iter().chain(&b).map(|p| p.0).fold(at as f64 + 10.0, f64::max);
        let (ka, kb) = state
            .timeline
            .with_untracked(|t| {
                t.branch.as_ref().map(|x| (format!("{} = {}", x.spec.key, state.value_of(&x.spec.key)), format!("{} = {}", x.spec.key, x.spec.value)))
            })
            .unwrap_or_default();
        let series = vec![Series::line(&format!("A ({ka})"), BLUE, a, 2), Series::line(&format!("B ({kb})"), GREEN, b, 2)];
        state.draw_soon("fork-chart", move || {
            let spec = ChartSpec {
                title: "A vs B: mini-batch loss after the fork",
                x_label: "training step",
                y_label: "mini-batch loss",
                log_y: true,
                x_range: Some((at as f64, last)),
                y_range: None,
                band: None,
                log_x: false,
            };
            chart::draw(&canvas, &spec, &series);
        });
    });
    view! { <canvas id="fork-chart" node_ref=canvas width=520 height=220 role="img" aria-label="A's and B's mini-batch loss after the fork"></canvas> }
}
