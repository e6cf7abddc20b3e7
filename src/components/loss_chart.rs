//! The loss chart every lab shows: the mini-batch loss of every recorded step (grey) and the
//! whole-set losses the lab measures — train and test at each snapshot, or the lab's own
//! evaluations (the CNN's 10,000 test images) — on a log scale. The step axis is logarithmic by
//! default, so the first steps (where most of the learning happens) are not a sliver at the left
//! edge of a long run; a switch shows all steps linearly or only the recent ones. The same chart
//! draws a classifier's accuracy (`percent`): each recorded mini-batch's share right, and the
//! lab's evaluations.

use crate::client::{storage_get, storage_set, LabState};
use crate::components::chart::{self, ChartSpec, Series, BLUE, GREY, ORANGE};
use leptos::html;
use leptos::prelude::*;
use plotters::style::RGBColor;

/// Points of a curve: `(step, loss)`.
pub type Curve = Vec<(f64, f64)>;

/// A loss the lab measures itself (on a whole split, at its evaluations), or a baseline drawn
/// flat across the chart (one point: its value).
#[derive(Clone, PartialEq)]
pub struct Measured {
    pub label: &'static str,
    pub color: RGBColor,
    pub curve: Curve,
    pub flat: bool,
    /// Drawn as dots (a marked point, e.g. the best epoch), not a line.
    pub dots: bool,
}

impl Measured {
    pub fn curve(label: &'static str, color: RGBColor, curve: Curve) -> Self {
        Measured { label, color, curve, flat: false, dots: false }
    }

    pub fn baseline(label: &'static str, color: RGBColor, value: f64) -> Self {
        Measured { label, color, curve: vec![(0.0, value)], flat: true, dots: false }
    }

    pub fn dot(label: &'static str, color: RGBColor, at: (f64, f64)) -> Self {
        Measured { label, color, curve: vec![at], flat: false, dots: true }
    }
}

/// Steps shown by the "recent" axis.
const RECENT_STEPS: f64 = 1000.0;
/// Where this browser remembers the axis choice.
const AXIS_KEY: &str = "deeply.stepAxis";

#[component]
pub fn LossChart(
    state: LabState,
    #[prop(into)] title: Signal<String>,
    /// The loss's name and units, e.g. "cross-entropy" or "loss (standardised y)²".
    #[prop(into)]
    y_label: Signal<String>,
    /// The lab's own evaluations (and baselines), drawn instead of the per-snapshot train/test
    /// losses.
    #[prop(optional)]
    evaluations: Option<Signal<Vec<Measured>>>,
    #[prop(default = 560)] width: u32,
    #[prop(default = 280)] height: u32,
    /// The canvas' id (the axis select's is derived from it).
    #[prop(default = "loss-chart")]
    id: &'static str,
    /// A logarithmic loss axis (a loss that falls by orders of magnitude), else linear (a loss
    /// per character that moves between 2 and 3 nats).
    #[prop(default = true)]
    log_y: bool,
    /// Accuracy in % instead of the loss: the mini-batches' share right, on a linear axis up to 100.
    #[prop(default = false)]
    percent: bool,
) -> impl IntoView {
    let canvas = NodeRef::<html::Canvas>::new();
    let axis = RwSignal::new(storage_get(AXIS_KEY).filter(|a| ["log", "linear", "recent"].contains(&a.as_str())).unwrap_or_else(|| "log".into()));
    Effect::new(move |_| {
        let Some(canvas) = canvas.get() else { return };
        let batch: Curve = state.records.with(|r| {
            if percent {
                r.iter().filter_map(|p| Some((p.step as f64, p.accuracy? as f64 * 100.0))).collect()
            } else {
                r.iter().map(|p| (p.step as f64, p.loss as f64)).collect()
            }
        });
        let mut series = vec![Series::line("mini-batch", GREY, batch, 1)];
        let mut flat = Vec::new();
        match evaluations {
            Some(measured) => {
                for m in measured.get() {
                    if m.flat {
                        flat.push(m);
                    } else if m.dots {
                        series.push(Series::dots(m.label, m.color, m.curve, 5));
                    } else {
                        series.push(Series::line(m.label, m.color, m.curve, 2));
                    }
                }
            }
            None => state.history.with(|h| {
                series.push(Series::line("train", BLUE, h.iter().map(|p| (p.step as f64, p.train_loss as f64)).collect(), 2));
                series.push(Series::line("test", ORANGE, h.iter().map(|p| (p.step as f64, p.test_loss as f64)).collect(), 2));
            }),
        }
        let last = series.iter().filter_map(|s| s.points.last().map(|p| p.0)).fold(10.0, f64::max);
        let (title, y_label, mode) = (title.get(), y_label.get(), axis.get());
        let (x_range, x_label) = match mode.as_str() {
            "recent" => ((last - RECENT_STEPS).max(0.0), "training step (the last 1,000)"),
            "linear" => (0.0, "training step"),
            _ => (1.0, "training step (log scale)"),
        };
        for m in flat {
            let value = m.curve.first().map_or(f64::NAN, |p| p.1);
            series.push(Series::line(m.label, m.color, vec![(x_range, value), (last, value)], 1));
        }
        let log_x = mode == "log";
        // Accuracy: the floor follows the lowest point in view (down to a multiple of 10 %), so
        // the curves get the chart's height.
        let y_range = percent.then(|| {
            let lo = series.iter().flat_map(|s| s.points.iter()).filter(|p| p.0 >= x_range && p.1.is_finite()).map(|p| p.1).fold(100.0f64, f64::min);
            (((lo - 2.0) / 10.0).floor().clamp(0.0, 9.0) * 10.0, 100.0)
        });
        state.draw_soon(id, move || {
            let spec =
                ChartSpec { title: &title, x_label, y_label: &y_label, log_y: log_y && !percent, x_range: Some((x_range, last)), y_range, band: None, log_x };
            chart::draw(&canvas, &spec, &series);
        });
    });
    let choose = move |ev: leptos::ev::Event| {
        let mode = event_target_value(&ev);
        storage_set(AXIS_KEY, &mode);
        axis.set(mode);
    };
    let select_id = if id == "loss-chart" { "loss-axis".to_string() } else { format!("{id}-axis") };
    view! {
        <canvas id=id node_ref=canvas width=width height=height></canvas>
        <label class="axis-mode" title="The early steps, where most learning happens, get room on a log axis">
            <span class="muted">"steps:"</span>
            <select id=select_id on:change=choose>
                <option value="log" selected=move || axis.get() == "log">"log scale"</option>
                <option value="linear" selected=move || axis.get() == "linear">"all, linear"</option>
                <option value="recent" selected=move || axis.get() == "recent">"the last 1,000"</option>
            </select>
        </label>
    }
}
