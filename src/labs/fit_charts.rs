//! The fit lab's charts: target vs prediction (over the extended range, current mini-batch
//! highlighted), the losses, gradient norms per parameter tensor, and hidden units' contributions.

use crate::client::LabState;
use crate::components::chart::{self, palette, ChartSpec, Series, BLUE, GREY, ORANGE};
use engine::lab::fit::FitConfig;
use engine::lab::View;
use engine::loss::Loss;
use leptos::html;
use leptos::prelude::*;

fn fit_config(state: &LabState) -> FitConfig {
    state.config_as::<FitConfig>().unwrap_or_default()
}

/// The y range of the target on the training interval, with room around it.
fn target_range(xs: &[f32], target: &[f32], domain: (f32, f32)) -> (f64, f64) {
    let inside = xs.iter().zip(target).filter(|(&x, _)| x >= domain.0 && x <= domain.1).map(|(_, &y)| y as f64);
    let (lo, hi) = inside.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| (a.min(y), b.max(y)));
    let margin = 0.45 * (hi - lo).max(1e-3);
    (lo - margin, hi + margin)
}

pub fn fit_chart(state: LabState, canvas: NodeRef<html::Canvas>) {
    Effect::new(move |_| {
        let Some(canvas) = canvas.get() else { return };
        let c = fit_config(&state);
        state.snapshot.with(|s| {
            let Some(View::Fit(v)) = s.as_ref().map(|s| &s.view) else {
                return;
            };
            let line = |ys: &[f32]| v.xs.iter().zip(ys).map(|(&x, &y)| (x as f64, y as f64)).collect::<Vec<_>>();
            let batch: Vec<(f64, f64)> = v.batch.iter().filter_map(|&i| v.train_points.get(i as usize)).map(|&(x, y)| (x as f64, y as f64)).collect();
            let target_label = format!("target {}", c.target.formula());
            let model_label = if c.model == engine::lab::fit::FitModel::Poly { "polynomial's prediction" } else { "network's prediction" };
            let x_range = Some((v.xs[0] as f64, v.xs[v.xs.len() - 1] as f64));
            let y_range = Some(target_range(&v.xs, &v.target, v.domain));
            let band = (v.domain.0 as f64, v.domain.1 as f64);
            let series = [
                Series::dots("training points", GREY, v.train_points.iter().map(|&(x, y)| (x as f64, y as f64)).collect(), 2),
                Series::dots("current mini-batch", ORANGE, batch, 4),
                Series::line(&target_label, ORANGE, line(&v.target), 2),
                Series::line(model_label, BLUE, line(&v.prediction), 3),
            ];
            state.draw_soon("fit-chart", move || {
                let spec = ChartSpec {
                    title: "Target vs prediction (shaded: training interval)",
                    x_label: "x",
                    y_label: "y",
                    log_y: false,
                    x_range,
                    y_range,
                    band: Some((band.0, band.1, "training interval")),
                    log_x: false,
                };
                chart::draw(&canvas, &spec, &series);
            });
        });
    });
}

/// The loss chart's title: which loss, on a log scale.
pub fn loss_title(c: &FitConfig) -> &'static str {
    if c.loss == Loss::L1 {
        "Loss (mean absolute error, log scale)"
    } else {
        "Loss (mean squared error, log scale)"
    }
}

/// The loss's units: standardised or the target's own, squared for squared error.
pub fn loss_units(c: &FitConfig) -> &'static str {
    match (c.norm, c.loss) {
        (true, Loss::L1) => "loss (standardised y)",
        (true, _) => "loss (standardised y)²",
        (false, Loss::L1) => "loss (units of y)",
        (false, _) => "loss (units of y)²",
    }
}

pub fn grad_chart(state: LabState, canvas: NodeRef<html::Canvas>) {
    Effect::new(move |_| {
        let Some(canvas) = canvas.get() else { return };
        let names: Vec<String> = state.snapshot.with_untracked(|s| {
            s.as_ref()
                .map(|s| s.layers.iter().enumerate().flat_map(|(i, l)| l.params.iter().map(move |p| format!("{}{}", p.name, i + 1))).collect())
                .unwrap_or_default()
        });
        state.records.with(|h| {
            let last = h.last().map(|p| p.step as f64).unwrap_or(1.0).max(10.0);
            let series: Vec<Series> = names
                .iter()
                .enumerate()
                .map(|(k, name)| {
                    let pts = h.iter().filter_map(|p| p.grads.get(k).map(|&g| (p.step as f64, g as f64))).collect();
                    Series::line(name, palette(k), pts, 2)
                })
                .collect();
            state.draw_soon("grad-chart", move || {
                let spec = ChartSpec {
                    title: "Gradient norm of each parameter tensor (log scale)",
                    x_label: "training step",
                    y_label: "‖∂L/∂θ‖",
                    log_y: true,
                    x_range: Some((0.0, last)),
                    y_range: None,
                    band: None,
                    log_x: false,
                };
                chart::draw(&canvas, &spec, &series);
            });
        });
    });
}

pub fn units_chart(state: LabState, canvas: NodeRef<html::Canvas>) {
    Effect::new(move |_| {
        let Some(canvas) = canvas.get() else { return };
        let c = fit_config(&state);
        state.snapshot.with(|s| {
            let Some(View::Fit(v)) = s.as_ref().map(|s| &s.view) else {
                return;
            };
            let series: Vec<Series> = v
                .units
                .iter()
                .enumerate()
                .map(|(j, u)| Series::line("", palette(j), v.xs.iter().zip(u).map(|(&x, &y)| (x as f64, y as f64)).collect(), 2))
                .collect();
            let title = match c.act {
                engine::ops::ActivationKind::Relu => "Each last-layer ReLU's contribution wⱼ·hⱼ(x): hinges",
                _ => "Each last-hidden-layer unit's contribution wⱼ·hⱼ(x)",
            };
            let x_range = Some((v.xs[0] as f64, v.xs[v.xs.len() - 1] as f64));
            let band = (v.domain.0 as f64, v.domain.1 as f64);
            state.draw_soon("units-chart", move || {
                let spec = ChartSpec {
                    title,
                    x_label: "x",
                    y_label: "contribution to y",
                    log_y: false,
                    x_range,
                    y_range: None,
                    band: Some((band.0, band.1, "")),
                    log_x: false,
                };
                chart::draw(&canvas, &spec, &series);
            });
        });
    });
}
