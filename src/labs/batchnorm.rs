//! Lab 3: Batch Norm. A plain MLP and the same MLP with batch normalisation, trained side by
//! side on identical mini-batches: both nets' curves in the same charts, how far apart they are,
//! the BN paper's Figure 1, histograms over time, per-layer health and the running statistics.

use super::batchnorm_charts::{AccuracyChart, DepthCharts, HeatMaps, LayerSeriesCharts, PairLossChart, PercentileCharts, RunningStats};
use super::cnn::LoadingBar;
use crate::client::LabState;
use crate::components::controls::{options, Check, Field, SeedRow, Select};
use crate::components::diagnoses::Diagnoses;
use crate::components::presets::StoryPresets;
use crate::components::stats_bar::StatsBar;
use crate::components::Toolbar;
use engine::data::images::ImageSet;
use engine::init::Init;
use engine::lab::batchnorm::{BnConfig, BnView, Nets, Place, ShownMode, PRESETS};
use engine::lab::View;
use engine::ops::ActivationKind;
use engine::optim::OptimizerKind;
use leptos::prelude::*;

pub(super) fn config(state: &LabState) -> BnConfig {
    state.config_as::<BnConfig>().unwrap_or_default()
}

pub(super) fn with_view<R>(state: &LabState, f: impl FnOnce(&BnView) -> R) -> Option<R> {
    state.snapshot.with(|s| match s.as_ref().map(|s| &s.view) {
        Some(View::Batchnorm(v)) => Some(f(v)),
        _ => None,
    })
}

/// "784 → 100 → 100 → 10 · BN before each sigmoid · 89,610 weights each"
fn architecture(c: &BnConfig) -> String {
    let widths: Vec<String> = c.widths().iter().map(|w| w.to_string()).collect();
    let place = match c.place {
        Place::Before => "before",
        Place::After => "after",
    };
    format!("{} · BN {place} each {} · {} parameters in the plain net", widths.join(" → "), c.act.label(), c.param_count())
}

#[component]
fn BnControls(state: LabState) -> impl IntoView {
    view! {
        <crate::components::ControlsDrawer>
            <section>
                <h3>"Data"</h3>
                <Select state key="data" label="dataset" options=options(&ImageSet::ALL, ImageSet::label)/>
                <Check state key="norm" label="standardise pixels" help="(p − mean) / std of the training images, else p in [0, 1]"/>
                <SeedRow state/>
            </section>
            <section>
                <h3>"Both networks"</h3>
                <Field state key="hidden" kind="text" label="hidden layers" help="widths of the hidden layers, e.g. 100,100,100 (1–6 layers of 1–1024)"/>
                <Select state key="act" label="activation" options=options(&ActivationKind::ALL, ActivationKind::label)/>
                <Select state key="init" label="init" options=options(&Init::ALL, Init::label)/>
                <Field state key="sigma" label="σ (normal init)" step="0.01"/>
                <Field state key="gain" label="init gain" step="0.1" help="every initial weight is multiplied by this"/>
                <p class="muted small arch" id="architecture">{move || architecture(&config(&state))}</p>
            </section>
            <section>
                <h3>"Batch norm"</h3>
                <Select state key="place" label="BN placement" options=options(&Place::ALL, Place::label)/>
                <Check state key="freeze" label="freeze γ = 1, β = 0" help="BN as pure standardisation: γ and β stop learning (the BN net's optimiser state starts fresh)"/>
                <Select state key="mode" label="BN accuracy shown in" options=options(&ShownMode::ALL, ShownMode::label)
                    help="evaluation mode uses the running statistics; training mode normalises each test batch by itself (the pitfall). Both are measured."/>
                <Select state key="nets" label="train" options=options(&Nets::ALL, Nets::label) help="one net alone trains twice as fast; the other keeps its initial weights"/>
            </section>
            <section>
                <h3>"Training (both)"</h3>
                <Select state key="opt" label="optimizer" options=options(&OptimizerKind::ALL, OptimizerKind::label)/>
                <Field state key="lr" label="learning rate" step="0.0005"/>
                <Field state key="mom" label="momentum" step="0.05"/>
                <Field state key="bs" label="batch size" step="1" help="at least 2: batch norm needs a variance"/>
                <Field state key="l2" label="L2" step="0.0001"/>
            </section>
            <section>
                <h3>"Evaluate & stop"</h3>
                <Field state key="eval" label="test every (steps)" step="100" help="both nets on all 10,000 test images"/>
                <Field state key="unit" label="tracked unit" step="1" help="the unit of the last hidden layer whose input percentiles are drawn (Figure 1)"/>
                <Field state key="epochs" label="stop after epochs" step="1" help="0 = off"/>
                <Field state key="stop" label="stop at step" step="1" help="0 = off"/>
            </section>
        </crate::components::ControlsDrawer>
    }
}

/// How far apart the two nets are, in words and numbers.
#[component]
fn Difference(state: LabState) -> impl IntoView {
    let body = move || {
        with_view(&state, |v| {
            let mode = config(&state).mode;
            let Some(e) = v.history.last() else {
                return view! { <p class="muted small">"Appears after the first test evaluation."</p> }.into_any();
            };
            let bn = if mode == ShownMode::Train { e.bn_train_mode_accuracy } else { e.accuracy[1] };
            let diff = (bn - e.accuracy[0]) * 100.0;
            let recent = |i: usize| {
                let tail: Vec<f32> = v.trace.iter().rev().take(20).map(|t| t.loss[i]).filter(|l| l.is_finite()).collect();
                if tail.is_empty() {
                    f32::NAN
                } else {
                    tail.iter().sum::<f32>() / tail.len() as f32
                }
            };
            let loss_diff = recent(1) - recent(0);
            let pct = |a: f32| if a.is_finite() { format!("{:.2} %", a * 100.0) } else { "–".into() };
            let mode_note = if mode == ShownMode::Train { " (training mode)" } else { "" };
            view! {
                <div class="bn-diff">
                    <div class="stat"><span class="stat-label">"plain: test accuracy"</span>
                        <span class="stat-value plain" id="diff-plain" data-value=e.accuracy[0].to_string()>{pct(e.accuracy[0])}</span></div>
                    <div class="stat"><span class="stat-label">{format!("BN: test accuracy{mode_note}")}</span>
                        <span class="stat-value bn" id="diff-bn" data-value=bn.to_string()>{pct(bn)}</span></div>
                    <div class="stat"><span class="stat-label">"BN − plain"</span>
                        <span class="stat-value" id="diff-points" data-value=diff.to_string()>
                            {if diff.is_finite() { format!("{diff:+.2} points") } else { "–".into() }}</span></div>
                    <div class="stat" title="mean mini-batch loss of the last 20 trace points, BN minus plain">
                        <span class="stat-label">"batch loss, BN − plain"</span>
                        <span class="stat-value" id="diff-loss">{if loss_diff.is_finite() { format!("{loss_diff:+.3}") } else { "–".into() }}</span></div>
                    <div class="stat" title="the BN net in evaluation mode minus training mode: what forgetting model.eval() costs">
                        <span class="stat-label">"BN: eval − train mode"</span>
                        <span class="stat-value" id="diff-modes">{format!("{:+.2} points", (e.accuracy[1] - e.bn_train_mode_accuracy) * 100.0)}</span></div>
                </div>
                <p class="muted small">{format!("at step {} (epoch {:.2}), on all 10,000 test images", e.step, e.epoch)}</p>
            }
            .into_any()
        })
    };
    let failure = move || with_view(&state, |v| v.plain_failure.clone()).flatten();
    view! {
        <div class="card" id="difference">
            <h4 class="card-title">"Plain vs BN: how far apart"</h4>
            {body}
            <Show when=move || failure().is_some()>
                <p class="warn small" id="plain-failure">{move || failure().unwrap_or_default()}</p>
            </Show>
        </div>
    }
}

#[component]
pub fn BatchNormLab(state: LabState) -> impl IntoView {
    let eval_progress = move || with_view(&state, |v| v.eval_progress).unwrap_or(0.0);
    view! {
        <div class="lab">
            <BnControls state/>
            <section class="workspace">
                <LoadingBar state/>
                <Toolbar state/>
                <Diagnoses state/>
                <StatsBar state/>
                <Show when=move || { eval_progress() > 0.0 }>
                    <p class="muted small" id="eval-progress">{move || format!("evaluating the test set… {:.0}%", eval_progress() * 100.0)}</p>
                </Show>
                <StoryPresets state presets=PRESETS.iter().map(|p| (p.id, p.title, p.story, p.link)).collect()/>
                <Difference state/>
                <div class="charts chart-pair">
                    <div class="card"><PairLossChart state/></div>
                    <div class="card"><AccuracyChart state/></div>
                </div>
                <div class="chart-pair"><crate::components::TimeTravel state/></div>
                <PercentileCharts state/>
                <HeatMaps state/>
                <LayerSeriesCharts state/>
                <DepthCharts state/>
                <RunningStats state/>
            </section>
        </div>
    }
}
