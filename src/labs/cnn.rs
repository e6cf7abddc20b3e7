//! Lab 2: a CNN on real MNIST (or Fashion-MNIST). The race of the loop convolution against
//! im2col, the filters and feature maps, accuracy curves, a confusion matrix, the most
//! confidently wrong test images, per-layer histograms and draw-a-digit.

use super::cnn_editor::LayerEditor;
use super::cnn_panels::{AccuracyChart, CnnLayers, FiltersCard, ProbeCard, WrongCard};
use super::digit_pad::DigitPad;
use crate::client::LabState;
use crate::components::chart::ORANGE;
use crate::components::controls::{link_value, options, Check, Field, SeedRow, Select};
use crate::components::diagnoses::Diagnoses;
use crate::components::loss_chart::Measured;
use crate::components::stats_bar::StatsBar;
use crate::components::{LossChart, Toolbar};
use crate::format::short;
use engine::data::images::ImageSet;
use engine::lab::cnn::{CnnCommand, CnnConfig, CnnModel, CnnView};
use engine::lab::{LabCommand, View};
use engine::ops::ActivationKind;
use engine::optim::{OptimizerKind, Schedule};
use leptos::prelude::*;

pub(super) fn config(state: &LabState) -> CnnConfig {
    state.config_as::<CnnConfig>().unwrap_or_default()
}

pub(super) fn with_view<R>(state: &LabState, f: impl FnOnce(&CnnView) -> R) -> Option<R> {
    state.snapshot.with(|s| match s.as_ref().map(|s| &s.view) {
        Some(View::Cnn(v)) => Some(f(v)),
        _ => None,
    })
}

/// "conv 5×5 → 6, pad 2 · relu · max pool 2 · … · 61,706 parameters"
fn architecture(c: &CnnConfig) -> String {
    let mut parts = Vec::new();
    let sides = c.sides().unwrap_or_default();
    for (i, (f, k, p, pool)) in c.convs().into_iter().enumerate() {
        let (conv, pooled) = sides.get(i).copied().unwrap_or((0, 0));
        let pad = if p > 0 { format!(" pad {p}") } else { String::new() };
        parts.push(format!("conv {k}×{k}×{f}{pad} → {conv}×{conv}×{f}"));
        if pool > 1 {
            parts.push(format!("{} pool {pool} → {pooled}×{pooled}", link_value(&c.pooling)));
        }
    }
    for u in &c.dense {
        parts.push(format!("dense {u}"));
    }
    parts.push("dense 10".into());
    let n = c.param_count().to_string();
    let grouped: String =
        n.chars().rev().collect::<Vec<_>>().chunks(3).map(|g| g.iter().collect::<String>()).collect::<Vec<_>>().join(",").chars().rev().collect();
    format!("{} · {grouped} parameters", parts.join(" · "))
}

#[component]
pub(super) fn LoadingBar(state: LabState) -> impl IntoView {
    view! {
        <Show when=move || state.loading.with(|l| l.is_some())>
            <div class="loading" id="data-progress">
                {move || state.loading.get().map(|(what, loaded, total)| {
                    let pct = if total > 0.0 { (loaded / total * 100.0).min(100.0) } else { 0.0 };
                    view! {
                        <span>{format!("Loading {what}: {:.1} of {:.1} MB", loaded / 1e6, total / 1e6)}</span>
                        <progress max="100" value=pct></progress>
                    }
                })}
            </div>
        </Show>
    }
}

/// "3.2× faster" or "5.8× slower": a lane of `ms` against one of `than_ms`.
fn versus(than_ms: f64, ms: f64) -> String {
    let ratio = than_ms / ms.max(1e-3);
    if ratio >= 1.0 {
        format!("{ratio:.1}× faster")
    } else {
        format!("{:.1}× slower", 1.0 / ratio.max(1e-9))
    }
}

#[component]
fn RacePanel(state: LabState) -> impl IntoView {
    let race = move || with_view(&state, |v| v.race.clone()).flatten();
    let body = move || {
        match race() {
        None => view! { <p class="muted small" id="race-empty">"Press Play (or “Race now”): the current mini-batch goes through both convolutions, forward and backward, and both are timed."</p> }.into_any(),
        Some(r) => {
            let slow = r.naive_ms.max(r.gpu.as_ref().map_or(0.0, |g| g.ms)).max(1e-9);
            let speedup = r.naive_ms / r.im2col_ms.max(1e-3);
            let width = move |ms: f64| format!("{:.2}%", (ms / slow * 100.0).clamp(0.5, 100.0));
            view! {
                <div class="race-bars">
                    <div class="race-row"><span class="race-name">"naive loops"</span>
                        <span class="race-bar naive"><span style:width=width(r.naive_ms)></span></span>
                        <span class="race-ms" id="race-naive-ms" data-ms=r.naive_ms.to_string()>{format!("{:.1} ms", r.naive_ms)}</span></div>
                    <div class="race-row"><span class="race-name">"im2col + GEMM"</span>
                        <span class="race-bar fast"><span style:width=width(r.im2col_ms)></span></span>
                        <span class="race-ms" id="race-im2col-ms" data-ms=r.im2col_ms.to_string()>{format!("{:.1} ms", r.im2col_ms)}</span></div>
                    {r.gpu.clone().map(|g| view! {
                        <div class="race-row" title=format!("{}: the same mini-batch on the GPU, from the submission until the outputs are read back", g.device)>
                            <span class="race-name">"WebGPU"</span>
                            <span class="race-bar gpu"><span style:width=width(g.ms)></span></span>
                            <span class="race-ms" id="race-gpu-ms" data-ms=g.ms.to_string()>{format!("{:.1} ms", g.ms)}</span></div>
                    })}
                </div>
                <p class="race-summary">
                    <strong id="race-speedup">{format!("{speedup:.1}× faster")}</strong>
                    " · largest |difference| of the outputs "<span id="race-diff" data-diff=r.max_diff.to_string()>{short(r.max_diff)}</span>
                    {format!(" · batch of {} at step {}", r.batch, r.step)}
                </p>
                {r.gpu.map(|g| { let slower = g.ms > r.im2col_ms; view! {
                    <p class="race-summary" id="race-gpu">
                        <strong id="race-gpu-speedup" class:slower=slower>{format!("WebGPU: {} than the loops, {} than im2col", versus(r.naive_ms, g.ms), versus(r.im2col_ms, g.ms))}</strong>
                        " · largest |difference| from im2col "<span id="race-gpu-diff" data-diff=g.max_diff.to_string()>{short(g.max_diff)}</span>
                        {format!(" · {}", g.device)}
                        {g.device.contains("software").then_some(" — a software adapter: right for correctness, never for speed")}
                    </p>
                }})}
            }
            .into_any()
        }
    }
    };
    view! {
        <div class="card race" id="race">
            <h4 class="card-title">{move || if race().is_some_and(|r| r.gpu.is_some()) { "The race: loops vs im2col vs WebGPU (the same mini-batch, every conv layer, forward + backward)" } else { "The race: loops vs im2col (the same mini-batch, every conv layer, forward + backward)" }}</h4>
            {body}
            <div class="pad-row">
                <button id="race-now" on:click=move |_| state.command(LabCommand::Cnn(CnnCommand::Race))>"Race now"</button>
                <span class="muted small">"Same maths: the loops visit every (output, kernel) pair one at a time; im2col unfolds the patches into a matrix and does one matrix product, which streams through memory and uses SIMD."</span>
            </div>
        </div>
    }
}

#[component]
fn Confusion(state: LabState) -> impl IntoView {
    // Changes only when a test evaluation completes: re-render the table then, not per snapshot.
    let data = Memo::new(move |_| with_view(&state, |v| (v.confusion.clone(), v.classes.clone())).unwrap_or_default());
    let table = move || {
        data.with(|(confusion, classes)| {
            if confusion.len() != 100 {
                return view! { <p class="muted small">"Appears after the first test evaluation."</p> }.into_any();
            }
            let max = confusion.iter().enumerate().filter(|(i, _)| i / 10 != i % 10).map(|(_, &n)| n).max().unwrap_or(1).max(1);
            let head = classes.iter().map(|c| view! { <th>{c.clone()}</th> }).collect_view();
            let rows = (0..10)
                .map(|t| {
                    let cells = (0..10)
                        .map(|p| {
                            let n = confusion[t * 10 + p];
                            // A style property, not a style attribute: the CSP allows no inline styles.
                            // At most 60 % red: the dark count stays readable (contrast ≥ 4.5:1).
                            let background = if t == p { String::new() } else { format!("rgba(220, 38, 38, {:.2})", (n as f32 / max as f32).sqrt() * 0.6) };
                            view! { <td class:diag=t == p style:background=background>{n}</td> }
                        })
                        .collect_view();
                    view! { <tr><th>{classes[t].clone()}</th>{cells}</tr> }
                })
                .collect_view();
            view! {
                <table class="confusion cnn-confusion" id="confusion">
                    <caption>"rows: true class · columns: predicted (all 10,000 test images)"</caption>
                    <tr><th></th>{head}</tr>
                    {rows}
                </table>
            }
            .into_any()
        })
    };
    // Ten long class names (Fashion-MNIST) scroll inside the card instead of being cut off.
    view! { <div class="card"><h4 class="card-title">"Confusion matrix"</h4><div class="table-scroll" tabindex="0" role="region" aria-label="confusion matrix (scrolls sideways)">{table}</div></div> }
}

/// The controls column: data, model (layer editor, link lists), training, evaluation and stop.
#[component]
fn CnnControls(state: LabState) -> impl IntoView {
    view! {
            <crate::components::ControlsDrawer>
                <section>
                    <h3>"Data"</h3>
                    <Select state key="data" label="dataset" options=options(&ImageSet::ALL, ImageSet::label)/>
                    <Check state key="norm" label="standardise pixels" help="(p − mean) / std of the training images, else p in [0, 1]"/>
                    <SeedRow state/>
                </section>
                <section>
                    <h3>"Model"</h3>
                    <Select state key="model" label="start from" options=options(&CnnModel::ALL, CnnModel::label) help="sets every layer and the training recipe"/>
                    <LayerEditor state/>
                    <Select state key="pooling" label="pooling" options=vec![("max".into(), "max"), ("avg".into(), "average")]/>
                    <details class="lists">
                        <summary class="muted small">"edit as lists (the link keys)"</summary>
                        <Field state key="filters" kind="text" label="filters per conv" help="one number per conv layer, e.g. 6,16 (1–4 layers, 1–64 filters)"/>
                        <Field state key="kernel" kind="text" label="kernel sizes" help="per conv layer, e.g. 5,5"/>
                        <Field state key="pad" kind="text" label="padding" help="per conv layer, e.g. 2,0"/>
                        <Field state key="pool" kind="text" label="pool windows" help="per conv layer; 0 or 1 = no pooling"/>
                        <Field state key="dense" kind="text" label="hidden dense" help="widths of the dense layers before the output, e.g. 120,84 (empty: none)"/>
                    </details>
                    <Select state key="act" label="activation" options=options(&ActivationKind::ALL, ActivationKind::label)/>
                    <p class="muted small arch" id="architecture">{move || architecture(&config(&state))}</p>
                </section>
                <section>
                    <h3>"Training"</h3>
                    <Select state key="opt" label="optimizer" options=options(&OptimizerKind::ALL, OptimizerKind::label)/>
                    <Field state key="lr" label="learning rate" step="0.0005"/>
                    <Select state key="sched" label="schedule" options=options(&Schedule::ALL, Schedule::label)/>
                    <Field state key="period" label="period T (steps)" step="100"/>
                    <Field state key="bs" label="batch size" step="1"/>
                    <Field state key="l2" label="L2" step="0.0001"/>
                    <Select state key="conv" label="convolution" options=vec![("im2col".into(), "im2col + GEMM"), ("naive".into(), "naive loops")] help="which implementation trains the model"/>
                    <Check state key="race" label="race both every ~1.5 s"/>
                </section>
                <section>
                    <h3>"Evaluate & stop"</h3>
                    <Field state key="eval" label="test every (steps)" step="100" help="all 10,000 test images are evaluated this often"/>
                    <Field state key="epochs" label="stop after epochs" step="1" help="0 = off"/>
                    <Field state key="stop" label="stop at step" step="1" help="0 = off"/>
                </section>
            </crate::components::ControlsDrawer>
    }
}

#[component]
pub fn CnnLab(state: LabState) -> impl IntoView {
    let test_losses = Signal::derive(move || {
        let curve = with_view(&state, |v| v.history.iter().map(|h| (h.step as f64, h.test_loss as f64)).collect()).unwrap_or_default();
        vec![Measured::curve("test (10,000 images)", ORANGE, curve)]
    });
    let eval_progress = move || with_view(&state, |v| v.eval_progress).unwrap_or(0.0);
    view! {
        <div class="lab">
            <CnnControls state/>
            <section class="workspace">
                <LoadingBar state/>
                <Toolbar state/>
                <Diagnoses state/>
                <StatsBar state/>
                <Show when=move || { eval_progress() > 0.0 }>
                    <p class="muted small" id="eval-progress">{move || format!("evaluating the test set… {:.0}%", eval_progress() * 100.0)}</p>
                </Show>
                <RacePanel state/>
                <div class="charts chart-pair">
                    <div class="card"><LossChart state title="Loss (log scale)" y_label="cross-entropy" evaluations=test_losses/></div>
                    <div class="card"><AccuracyChart state/></div>
                </div>
                <div class="chart-pair"><crate::components::TimeTravel state/></div>
                <div class="play-grid">
                    <div class="card">
                        <h4 class="card-title">"Draw a digit"</h4>
                        <DigitPad state/>
                    </div>
                    <FiltersCard state/>
                </div>
                <ProbeCard state/>
                <div class="play-grid">
                    <Confusion state/>
                    <WrongCard state/>
                </div>
                <h3 class="section-title">"Layers: weights, activations (last mini-batch) and gradients"</h3>
                <CnnLayers state/>
            </section>
        </div>
    }
}
