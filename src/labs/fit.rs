//! Lab 1, "Fit a function": from learning a polynomial's coefficients to a fully parameterised
//! network — and seeing why it sometimes does not learn.

use super::fit_charts;
use crate::client::LabState;
use crate::components::controls::{options, Check, Field, SeedRow, Select};
use crate::components::diagnoses::Diagnoses;
use crate::components::layers::LayerCard;
use crate::components::presets::Presets;
use crate::components::space::SpacePanel;
use crate::components::stats_bar::StatsBar;
use crate::components::{LossChart, Toolbar};
use engine::data::fit::FitTarget;
use engine::init::Init;
use engine::lab::fit::FitModel;
use engine::lab::presets::FIT_PRESETS;
use engine::lab::LabConfig;
use engine::loss::Loss;
use engine::ops::ActivationKind;
use engine::optim::OptimizerKind;
use leptos::html;
use leptos::prelude::*;

#[component]
pub fn FitLab(state: LabState) -> impl IntoView {
    let fit = move || match state.config.get() {
        LabConfig::Fit(c) => c,
        _ => Default::default(),
    };
    let is_mlp = move || fit().model == FitModel::Mlp;
    let (fit_canvas, grad_canvas, units_canvas) = (NodeRef::<html::Canvas>::new(), NodeRef::<html::Canvas>::new(), NodeRef::<html::Canvas>::new());
    fit_charts::fit_chart(state, fit_canvas);
    fit_charts::grad_chart(state, grad_canvas);
    fit_charts::units_chart(state, units_canvas);

    let layers = move || {
        state.snapshot.with(|s| s.as_ref().map(|s| s.layers.iter().cloned().enumerate().map(|(i, l)| view! { <LayerCard index=i layer=l/> }).collect_view()))
    };
    let loss_title = Signal::derive(move || fit_charts::loss_title(&fit()).to_string());
    let loss_units = Signal::derive(move || fit_charts::loss_units(&fit()).to_string());
    let has_units = move || state.snapshot.with(|s| matches!(s.as_ref().map(|s| &s.view), Some(engine::lab::View::Fit(v)) if !v.units.is_empty()));

    view! {
        <div class="lab">
            <crate::components::ControlsDrawer>
                <section>
                    <h3>"Data"</h3>
                    <Select state key="fn" label="target" options=options(&FitTarget::ALL, FitTarget::label)/>
                    <Field state key="n" label="training points" step="1" help="test points: half as many, drawn separately"/>
                    <Field state key="noise" label="noise σ" step="0.01" help="Gaussian noise added to training targets"/>
                    <Check state key="norm" label="standardise x and y" help="fit mean/std on the training data; charts show original units"/>
                </section>
                <section>
                    <h3>"Model"</h3>
                    <Select state key="model" label="family" options=options(&[FitModel::Poly, FitModel::Mlp], FitModel::label)/>
                    <Show when=move || !is_mlp()>
                        <Field state key="degree" label="degree" step="1" help="1 to 9: y = c₀ + c₁x + … + c_d x^d"/>
                    </Show>
                    <Show when=is_mlp>
                        <Field state key="hidden" kind="text" label="hidden layers" help="units per hidden layer, e.g. 16,16 (empty: a linear model)"/>
                        <Select state key="act" label="activation" options=options(&ActivationKind::ALL, ActivationKind::label)/>
                        <Show when=move || fit().act == ActivationKind::Leaky>
                            <Field state key="alpha" label="leak α" step="0.01"/>
                        </Show>
                    </Show>
                    <Select state key="init" label="initialisation" options=options(&Init::ALL, Init::label)/>
                    <Show when=move || fit().init == Init::Normal>
                        <Field state key="sigma" label="σ of normal init" step="0.01"/>
                    </Show>
                </section>
                <section>
                    <h3>"Training"</h3>
                    <Select state key="opt" label="optimizer" options=options(&OptimizerKind::ALL, OptimizerKind::label)/>
                    <Field state key="lr" label="learning rate" step="0.001" help="changes take effect on the next step"/>
                    <Show when=move || fit().opt.uses_momentum()>
                        <Field state key="mom" label="momentum μ" step="0.05"/>
                    </Show>
                    <Field state key="bs" label="batch size" step="1" help="1 = pure SGD; ≥ training points = full batch; reshuffled every epoch"/>
                    <Field state key="l2" label="L2 weight decay λ" step="0.0001"/>
                    <Field state key="clip" label="clip gradient norm" step="0.1" help="0 = off"/>
                    <Select state key="loss" label="loss" options=options(&[Loss::Mse, Loss::L1], Loss::label)/>
                </section>
                <section>
                    <h3>"Run"</h3>
                    <SeedRow state help="one seed drives init, data and shuffling" title="draw a new random seed (resets the run)" id="new-seed"/>
                    <Field state key="stop" label="pause at step" step="1" help="0 = never"/>
                </section>
            </crate::components::ControlsDrawer>
            <section class="workspace">
                <Toolbar state/>
                <Diagnoses state/>
                <StatsBar state/>
                <div class="charts">
                    <div class="card wide"><canvas id="fit-chart" node_ref=fit_canvas width="1240" height="380"></canvas></div>
                    <div class="card"><LossChart state title=loss_title y_label=loss_units width=620 height=320/></div>
                    <crate::components::TimeTravel state/>
                    <crate::components::Backprop state/>
                    <div class="card"><canvas id="grad-chart" node_ref=grad_canvas width="620" height="320"></canvas></div>
                    <div class="card" class:hidden=move || !has_units()><canvas id="units-chart" node_ref=units_canvas width="620" height="320"></canvas></div>
                </div>
                <h3 class="section-title">"Pitfalls to try"</h3>
                <p class="muted small">"Each opens a share link that reproduces its story. Press Play and read the diagnosis that appears."</p>
                <Presets state presets=FIT_PRESETS/>
                <h3 class="section-title">"Inside the model"</h3>
                <p class="muted small">"Each hidden layer computes Wx + b and then the activation. Weights and their gradients come from the last step; activations are measured on every training point."</p>
                <div class="layers" id="layers">{layers}</div>
                <SpacePanel/>
            </section>
        </div>
    }
}
