//! The loss chart every lab shows: the mini-batch loss of every recorded step (grey) and the
//! whole-set losses the lab measures — train and test at each snapshot, or the lab's own
//! evaluations (the CNN's 10,000 test images) — on a log scale over training steps.

use crate::client::LabState;
use crate::components::chart::{self, ChartSpec, Series, BLUE, GREY, ORANGE};
use leptos::html;
use leptos::prelude::*;

/// Points of a curve: `(step, loss)`.
pub type Curve = Vec<(f64, f64)>;

#[component]
pub fn LossChart(
    state: LabState,
    #[prop(into)] title: Signal<String>,
    /// The loss's name and units, e.g. "cross-entropy" or "loss (standardised y)²".
    #[prop(into)]
    y_label: Signal<String>,
    /// The lab's own evaluations with their label, drawn instead of the per-snapshot train/test
    /// losses.
    #[prop(optional)]
    evaluations: Option<(&'static str, Signal<Curve>)>,
    #[prop(default = 560)] width: u32,
    #[prop(default = 280)] height: u32,
) -> impl IntoView {
    let canvas = NodeRef::<html::Canvas>::new();
    Effect::new(move |_| {
        let Some(canvas) = canvas.get() else { return };
        let batch: Curve = state.records.with(|r| r.iter().map(|p| (p.step as f64, p.loss as f64)).collect());
        let mut series = vec![Series::line("mini-batch", GREY, batch, 1)];
        match evaluations {
            Some((label, curve)) => series.push(Series::line(label, ORANGE, curve.get(), 2)),
            None => state.history.with(|h| {
                series.push(Series::line("train", BLUE, h.iter().map(|p| (p.step as f64, p.train_loss as f64)).collect(), 2));
                series.push(Series::line("test", ORANGE, h.iter().map(|p| (p.step as f64, p.test_loss as f64)).collect(), 2));
            }),
        }
        let last = series.iter().filter_map(|s| s.points.last().map(|p| p.0)).fold(10.0, f64::max);
        let (title, y_label) = (title.get(), y_label.get());
        let spec = ChartSpec { title: &title, x_label: "training step", y_label: &y_label, log_y: true, x_range: Some((0.0, last)), y_range: None, band: None };
        chart::draw(&canvas, &spec, &series);
    });
    view! { <canvas id="loss-chart" node_ref=canvas width=width height=height></canvas> }
}
