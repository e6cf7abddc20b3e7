//! The playground: 2-D classification and regression, TensorFlow Playground's features and more
//! (own points and CSV, per-layer activations, dropout, schedules, confusion matrix, export).

use super::playground_panels::{ExportCard, GraphCard, HeatmapCard};
use crate::client::LabState;
use crate::components::controls::{options, Check, Field, SeedRow, Select};
use crate::components::diagnoses::Diagnoses;
use crate::components::stats_bar::StatsBar;
use crate::components::{LossChart, Toolbar};
use engine::data::playground::{parse_csv, PlayData, Problem};
use engine::lab::playground::{PlaygroundCommand, PlaygroundConfig, PlaygroundView, MAX_LAYERS, MAX_UNITS};
use engine::lab::{LabCommand, Notice, View};
use engine::ops::ActivationKind;
use engine::optim::{OptimizerKind, Schedule};
use leptos::prelude::*;

pub(super) fn config(state: &LabState) -> PlaygroundConfig {
    state.config_as::<PlaygroundConfig>().unwrap_or_default()
}

pub(super) fn with_view<R>(state: &LabState, f: impl FnOnce(&PlaygroundView) -> R) -> Option<R> {
    state.snapshot.with(|s| match s.as_ref().map(|s| &s.view) {
        Some(View::Playground(v)) => Some(f(v)),
        _ => None,
    })
}

/// The largest file read (a CSV of 2,000 points or an export is far smaller).
pub(super) const MAX_FILE_BYTES: f64 = 8.0 * 1024.0 * 1024.0;

/// Reads a chosen file's text (up to [`MAX_FILE_BYTES`]), then hands it to `then`.
pub(super) fn read_file(state: LabState, key: &'static str, ev: &leptos::ev::Event, then: impl FnOnce(String) + 'static) {
    crate::share::read_file(state, key, ev, MAX_FILE_BYTES, then)
}

pub(super) fn download(name: &str, text: &str) {
    crate::share::download(name, text, "application/json");
}

#[component]
fn NetworkEditor(state: LabState) -> impl IntoView {
    let hidden = move || config(&state).hidden;
    let set = move |h: Vec<usize>| {
        state.set_value("hidden", &h.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(","));
    };
    let layers = move || {
        hidden()
            .into_iter()
            .enumerate()
            .map(|(i, units)| {
                view! {
                    <div class="layer-row">
                        <span>{format!("layer {}: {units} units", i + 1)}</span>
                        <button class="small-btn" id=format!("units-minus-{i}") disabled={units <= 1}
                            on:click=move |_| { let mut h = hidden(); h[i] -= 1; set(h) }>"−"</button>
                        <button class="small-btn" id=format!("units-plus-{i}") disabled={units >= MAX_UNITS}
                            on:click=move |_| { let mut h = hidden(); h[i] += 1; set(h) }>"+"</button>
                    </div>
                }
            })
            .collect_view()
    };
    view! {
        <div class="network-editor" style:display=move || if state.hidden("hidden") { "none" } else { "" }>
            <div class="layer-row">
                <strong>{move || format!("{} hidden layers", hidden().len())}</strong>
                <button class="small-btn" id="layers-minus" disabled=move || { hidden().is_empty() }
                    on:click=move |_| { let mut h = hidden(); h.pop(); set(h) }>"−"</button>
                <button class="small-btn" id="layers-plus" disabled=move || { hidden().len() >= MAX_LAYERS }
                    on:click=move |_| { let mut h = hidden(); h.push(4); set(h) }>"+"</button>
            </div>
            {layers}
        </div>
    }
}

/// The controls column: data (with your own points), features, network, training, stop.
#[component]
fn PlaygroundControls(state: LabState, new_class: RwSignal<u8>) -> impl IntoView {
    let on_csv = move |ev: leptos::ev::Event| {
        read_file(state, "csv", &ev, move |text| {
            // Your own points train as the `custom` dataset, whatever is selected now.
            let classes = match PlayData::Custom.problem() {
                Problem::MultiClass(k) => Some(k),
                Problem::Regression => None,
                Problem::Binary => Some(2),
            };
            match parse_csv(&text, classes) {
                Ok(points) => state.command(LabCommand::Playground(PlaygroundCommand::SetPoints { points })),
                Err(message) => {
                    state.notices.update(|n| n.push(Notice { key: "csv".into(), message: format!("CSV not loaded, data unchanged — {message}") }))
                }
            }
        });
    };
    let feature = move |key: &'static str, label: &'static str| view! { <Check state key label/> };
    let is_custom = move || config(&state).data == PlayData::Custom;
    let act_opts = options(&ActivationKind::ALL, ActivationKind::label);
    view! {
            <crate::components::ControlsDrawer>
                <section>
                    <h3>"Data"</h3>
                    <Select state key="data" label="dataset" options=options(&PlayData::ALL, PlayData::label)/>
                    <Field state key="noise" label="noise" step="0.05" help="0 to 0.5"/>
                    <Field state key="ptrain" label="training %" step="10" help="share of points used for training (10–90)"/>
                    <Field state key="n" label="points" step="50"/>
                    <SeedRow state title="new data and weights from a new seed"/>
                    <div class="own-data">
                        <p class="muted small">{move || if is_custom() { "Click the output plot to add a point of the chosen class." } else { "Choose “your own points” to click points in, or load a CSV of x,y,label." }}</p>
                        <label class="field" title="The class a click on the output plot adds: draw your own problem, point by point"><span>"class to add"</span>
                            <select id="new-class" on:change=move |ev| new_class.set(event_target_value(&ev).parse().unwrap_or(1))>
                                <option value="1">"blue (1)"</option><option value="0">"orange (0)"</option>
                            </select>
                        </label>
                        <div class="field file"><span>"your data"</span>
                            <label class="button-like" title="Your own data: a CSV of x,y,label lines (label 0 or 1), up to 2,000 points">"Load a CSV…"<input id="csv-file" type="file" accept=".csv,text/csv,text/plain" on:change=on_csv/></label>
                        </div>
                    </div>
                </section>
                <section>
                    <h3>"Features"</h3>
                    <div class="features">
                        {feature("x", "x₁")}{feature("y", "x₂")}{feature("xsq", "x₁²")}{feature("ysq", "x₂²")}{feature("xy", "x₁x₂")}
                        {feature("sinx", "sin x₁")}{feature("siny", "sin x₂")}{feature("cosx", "cos x₁")}{feature("cosy", "cos x₂")}
                    </div>
                </section>
                <section>
                    <h3>"Network"</h3>
                    <NetworkEditor state/>
                    <Select state key="act" label="activation" options=act_opts/>
                    <Field state key="acts" kind="text" label="per layer" help="optional, e.g. relu,tanh (overrides the activation for those layers)"/>
                    <Field state key="dropout" label="dropout p" step="0.05"/>
                </section>
                <section>
                    <h3>"Training"</h3>
                    // Regression always trains on squared error: no choice to offer.
                    <Show when=move || config(&state).data.problem() != Problem::Regression
                        fallback=|| view! { <p class="muted small" id="loss-fixed">"loss: squared error (regression)"</p> }>
                        <Select state key="loss" label="loss" options=vec![("ce".into(), "cross-entropy"), ("mse".into(), "squared error")]/>
                    </Show>
                    <Select state key="opt" label="optimizer" options=options(&OptimizerKind::ALL, OptimizerKind::label)/>
                    <Field state key="lr" label="learning rate" step="0.001"/>
                    <Select state key="sched" label="schedule" options=options(&Schedule::ALL, Schedule::label)/>
                    <Field state key="period" label="period T (steps)" step="100"/>
                    <Field state key="bs" label="batch size" step="1"/>
                    <Select state key="reg" label="regularisation" options=vec![("none".into(), "none"), ("l1".into(), "L1"), ("l2".into(), "L2")]/>
                    <Field state key="regrate" label="reg. rate" step="0.001"/>
                </section>
                <section>
                    <h3>"Stop"</h3>
                    <Field state key="stoploss" label="at test loss <" step="0.01" help="0 = off"/>
                    <Field state key="stopepochs" label="after epochs" step="1" help="0 = off"/>
                    <Field state key="stop" label="at step" step="1" help="0 = off"/>
                </section>
            </crate::components::ControlsDrawer>
    }
}

#[component]
pub fn PlaygroundLab(state: LabState) -> impl IntoView {
    // The class a click on the output plot adds (chosen in the controls).
    let new_class = RwSignal::new(1u8);
    view! {
        <div class="lab">
            <PlaygroundControls state new_class/>
            <section class="workspace">
                <Toolbar state/>
                <Diagnoses state/>
                <StatsBar state/>
                <div class="play-grid">
                    <GraphCard state/>
                    <HeatmapCard state new_class/>
                </div>
                <div class="play-grid">
                    <div class="card"><LossChart state title="Loss (log scale)" y_label="loss" height=300/></div>
                    <crate::components::TimeTravel state/>
                    <crate::components::Backprop state/>
                    <ExportCard state/>
                </div>
            </section>
        </div>
    }
}
