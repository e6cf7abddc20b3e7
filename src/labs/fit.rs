//! Lab 1, "Fit a function": an MLP learns sin(x) from samples while you watch.

use crate::client::LabState;
use crate::components::chart::{self, ChartSpec, Series, BLUE, GREY, ORANGE};
use crate::components::controls::{link_value, Check, Field, Select};
use crate::components::layers::LayerCard;
use crate::components::stats_bar::StatsBar;
use crate::components::Toolbar;
use engine::init::Init;
use engine::lab::snapshot::View;
use engine::lab::LabConfig;
use engine::loss::Loss;
use engine::ops::ActivationKind;
use engine::optim::OptimizerKind;
use leptos::html;
use leptos::prelude::*;

fn options<T: serde::Serialize + Copy>(all: &[T], label: fn(T) -> &'static str) -> Vec<(String, &'static str)> {
    all.iter().map(|&v| (link_value(&v), label(v))).collect()
}

#[component]
pub fn FitLab(state: LabState) -> impl IntoView {
    let fit = move || match state.config.get() {
        LabConfig::Fit(c) => c,
    };
    let fit_canvas = NodeRef::<html::Canvas>::new();
    let loss_canvas = NodeRef::<html::Canvas>::new();

    Effect::new(move |_| {
        let Some(canvas) = fit_canvas.get() else { return };
        state.snapshot.with(|s| {
            let Some(View::Fit(v)) = s.as_ref().map(|s| &s.view) else { return };
            let line = |ys: &[f32]| v.xs.iter().zip(ys).map(|(&x, &y)| (x as f64, y as f64)).collect::<Vec<_>>();
            let target = line(&v.target);
            let lo = target.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
            let hi = target.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
            let margin = 0.35 * (hi - lo).max(1e-3);
            let spec = ChartSpec {
                title: "Target vs prediction",
                x_label: "x (radians)",
                y_label: "y = f(x)",
                log_y: false,
                x_range: Some((v.xs[0] as f64, v.xs[v.xs.len() - 1] as f64)),
                y_range: Some((lo - margin, hi + margin)),
            };
            chart::draw(
                &canvas,
                &spec,
                &[
                    Series {
                        label: "training points",
                        color: GREY,
                        points: v.train_points.iter().map(|&(x, y)| (x as f64, y as f64)).collect(),
                        dots: true,
                        width: 1,
                    },
                    Series { label: "target sin(x)", color: ORANGE, points: target, dots: false, width: 2 },
                    Series { label: "network's prediction", color: BLUE, points: line(&v.prediction), dots: false, width: 3 },
                ],
            );
        });
    });

    Effect::new(move |_| {
        let Some(canvas) = loss_canvas.get() else { return };
        state.history.with(|h| {
            let pts = |f: fn(&crate::client::HistoryPoint) -> f32| h.iter().map(|p| (p.step as f64, f(p) as f64)).collect::<Vec<_>>();
            let last = h.last().map(|p| p.step as f64).unwrap_or(1.0).max(1.0);
            let loss_name = match state.config.with_untracked(|c| match c {
                LabConfig::Fit(c) => c.loss,
            }) {
                Loss::L1 => "Loss (mean absolute error, log scale)",
                _ => "Loss (mean squared error, log scale)",
            };
            chart::draw(
                &canvas,
                &ChartSpec { title: loss_name, x_label: "training step", y_label: "loss (standardised units²)", log_y: true, x_range: Some((0.0, last)), y_range: None },
                &[
                    Series { label: "mini-batch", color: GREY, points: pts(|p| p.loss), dots: false, width: 1 },
                    Series { label: "train", color: BLUE, points: pts(|p| p.train_loss), dots: false, width: 2 },
                    Series { label: "test", color: ORANGE, points: pts(|p| p.test_loss), dots: false, width: 2 },
                ],
            );
        });
    });

    let act_options = options(&ActivationKind::ALL, ActivationKind::label);
    let init_options = options(&Init::ALL, Init::label);
    let opt_options = options(&OptimizerKind::ALL, OptimizerKind::label);
    let loss_options = options(&[Loss::Mse, Loss::L1], Loss::label);
    let layers = move || {
        state.snapshot.with(|s| {
            s.as_ref()
                .map(|s| s.layers.iter().cloned().enumerate().map(|(i, l)| view! { <LayerCard index=i layer=l/> }).collect_view())
        })
    };
    let new_seed = move |_| {
        let seed = (js_sys::Math::random() * 1e9) as u64;
        state.set_value("seed", &seed.to_string());
    };

    view! {
        <div class="lab">
            <aside class="controls">
                <section>
                    <h3>"Data"</h3>
                    <p class="muted small">"Target: sin(x) on [−π, π]; test points are held out."</p>
                    <Field state key="n" label="training points" step="1" help="test points: half as many"/>
                    <Field state key="noise" label="noise σ" step="0.01" help="Gaussian noise added to training targets"/>
                    <Check state key="norm" label="standardise x and y" help="fit mean/std on the training data; charts show original units"/>
                </section>
                <section>
                    <h3>"Network"</h3>
                    <Field state key="hidden" kind="text" label="hidden layers" help="units per hidden layer, e.g. 16,16 (empty: a linear model)"/>
                    <Select state key="act" label="activation" options=act_options/>
                    <Show when=move || fit().act == ActivationKind::Leaky>
                        <Field state key="alpha" label="leak α" step="0.01"/>
                    </Show>
                    <Select state key="init" label="initialisation" options=init_options/>
                    <Show when=move || fit().init == Init::Normal>
                        <Field state key="sigma" label="σ of normal init" step="0.01"/>
                    </Show>
                </section>
                <section>
                    <h3>"Training"</h3>
                    <Select state key="opt" label="optimizer" options=opt_options/>
                    <Field state key="lr" label="learning rate" step="0.001" help="changes take effect on the next step"/>
                    <Show when=move || fit().opt.uses_momentum()>
                        <Field state key="mom" label="momentum μ" step="0.05"/>
                    </Show>
                    <Field state key="bs" label="batch size" step="1" help="1 = pure SGD; ≥ training points = full batch"/>
                    <Field state key="l2" label="L2 weight decay λ" step="0.0001"/>
                    <Field state key="clip" label="clip gradient norm" step="0.1" help="0 = off"/>
                    <Select state key="loss" label="loss" options=loss_options/>
                </section>
                <section>
                    <h3>"Run"</h3>
                    <div class="seed-row">
                        <Field state key="seed" label="seed" step="1" help="one seed drives init, data and shuffling"/>
                        <button id="new-seed" title="draw a new random seed (resets the run)" on:click=new_seed>"new"</button>
                    </div>
                    <Field state key="stop" label="pause at step" step="1" help="0 = never"/>
                </section>
            </aside>
            <section class="workspace">
                <Toolbar state/>
                <StatsBar state/>
                <div class="charts">
                    <div class="card"><canvas id="fit-chart" node_ref=fit_canvas width="620" height="340"></canvas></div>
                    <div class="card"><canvas id="loss-chart" node_ref=loss_canvas width="620" height="340"></canvas></div>
                </div>
                <h3 class="section-title">"Inside the network"</h3>
                <p class="muted small">"Each hidden layer computes Wx + b and then the activation. Weights and their gradients come from the last step; activations are measured on every training point."</p>
                <div class="layers" id="layers">{layers}</div>
            </section>
        </div>
    }
}
