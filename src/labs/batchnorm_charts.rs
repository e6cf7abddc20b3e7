//! The Batch Norm lab's charts. Both nets are drawn in the same colours everywhere: plain in
//! orange, BN in blue. Histograms over time are heat maps: one column per sample, one cell per
//! bin, darker = more values.

use super::batchnorm::{config, with_view};
use crate::client::{storage_get, storage_set, LabState};
use crate::components::canvas::Canvas;
use crate::components::chart::{self, palette, ChartSpec, Series, BLUE, GREY, INK, ORANGE};
use engine::lab::batchnorm::{BnCommand, BnView, QUANTITIES};
use engine::lab::LabCommand;
use leptos::html;
use leptos::prelude::*;
use plotters::prelude::*;
use web_sys::HtmlCanvasElement;

const NETS: [(&str, RGBColor); 2] = [("plain", ORANGE), ("with BN", BLUE)];
/// Where this browser remembers the step-axis choice (shared with every lab's loss chart).
const AXIS_KEY: &str = "deeply.stepAxis";
const RECENT_STEPS: f64 = 1000.0;

/// `c` blended towards white by `t` (thin companion lines of a net's main colour).
fn lighter(c: RGBColor, t: f64) -> RGBColor {
    let mix = |v: u8| (v as f64 + (255.0 - v as f64) * t).round() as u8;
    RGBColor(mix(c.0), mix(c.1), mix(c.2))
}

/// A chart drawn from the view whenever `key` (what the chart depends on) changes.
fn redraw_on<K: PartialEq + Clone + Send + Sync + 'static>(
    state: LabState,
    canvas: NodeRef<html::Canvas>,
    id: &'static str,
    key: impl Fn(&BnView) -> K + Send + Sync + 'static,
    draw: impl Fn(&BnView, &HtmlCanvasElement) -> Box<dyn FnOnce()> + 'static,
) {
    let memo = Memo::new(move |_| with_view(&state, &key));
    Effect::new(move |_| {
        let _ = memo.get();
        let Some(c) = canvas.get() else { return };
        let canvas: HtmlCanvasElement = c.clone();
        if let Some(job) = state.snapshot.with_untracked(|s| match s.as_ref().map(|s| &s.view) {
            Some(engine::lab::View::Batchnorm(v)) => Some(draw(v, &canvas)),
            _ => None,
        }) {
            state.draw_soon(id, job);
        }
    });
}

/// The step axis: log (default), all linear, or the recent window — as the other labs' loss charts.
fn step_axis(mode: &str, last: f64) -> (f64, &'static str, bool) {
    match mode {
        "recent" => ((last - RECENT_STEPS).max(0.0), "training step (the last 1,000)", false),
        "linear" => (0.0, "training step", false),
        _ => (1.0, "training step (log scale)", true),
    }
}

#[component]
fn AxisSelect(axis: RwSignal<String>) -> impl IntoView {
    let choose = move |ev: leptos::ev::Event| {
        let mode = event_target_value(&ev);
        storage_set(AXIS_KEY, &mode);
        axis.set(mode);
    };
    view! {
        <label class="axis-mode">
            <span class="muted">"steps:"</span>
            <select class="bn-axis" on:change=choose>
                <option value="log" selected=move || axis.get() == "log">"log scale"</option>
                <option value="linear" selected=move || axis.get() == "linear">"all, linear"</option>
                <option value="recent" selected=move || axis.get() == "recent">"the last 1,000"</option>
            </select>
        </label>
    }
}

fn axis_signal() -> RwSignal<String> {
    RwSignal::new(storage_get(AXIS_KEY).filter(|a| ["log", "linear", "recent"].contains(&a.as_str())).unwrap_or_else(|| "log".into()))
}

/// Both nets' mini-batch loss (thin) and test loss (thick), log scale.
#[component]
pub fn PairLossChart(state: LabState) -> impl IntoView {
    let canvas = NodeRef::<html::Canvas>::new();
    let axis = axis_signal();
    Effect::new(move |_| {
        let Some(c) = canvas.get() else { return };
        let mode = axis.get();
        let Some(series) = with_view(&state, |v| {
            let mut series = Vec::new();
            for (i, (name, color)) in NETS.iter().enumerate() {
                series.push(Series::line(
                    &format!("{name}: mini-batch"),
                    lighter(*color, 0.55),
                    v.trace.iter().map(|t| (t.step as f64, t.loss[i] as f64)).collect(),
                    1,
                ));
                series.push(Series::line(&format!("{name}: test"), *color, v.history.iter().map(|h| (h.step as f64, h.loss[i] as f64)).collect(), 2));
            }
            series
        }) else {
            return;
        };
        let last = series.iter().filter_map(|s| s.points.last().map(|p| p.0)).fold(10.0, f64::max);
        let (from, x_label, log_x) = step_axis(&mode, last);
        state.draw_soon("bn-loss-chart", move || {
            let spec = ChartSpec {
                title: "Loss of both nets (log scale)",
                x_label,
                y_label: "cross-entropy",
                log_y: true,
                x_range: Some((from, last)),
                y_range: None,
                band: None,
                log_x,
            };
            chart::draw(&c, &spec, &series);
        });
    });
    view! {
        <canvas id="bn-loss-chart" node_ref=canvas width="560" height="280"></canvas>
        <AxisSelect axis/>
    }
}

/// Test accuracy of both nets (the BN net in both modes) and mini-batch accuracy.
#[component]
pub fn AccuracyChart(state: LabState) -> impl IntoView {
    let canvas = NodeRef::<html::Canvas>::new();
    let axis = axis_signal();
    Effect::new(move |_| {
        let Some(c) = canvas.get() else { return };
        let mode = axis.get();
        let Some(series) = with_view(&state, |v| {
            let pct = |a: f32| a as f64 * 100.0;
            let mut series = Vec::new();
            for (i, (name, color)) in NETS.iter().enumerate() {
                series.push(Series::line(
                    &format!("{name}: mini-batch"),
                    lighter(*color, 0.55),
                    v.trace.iter().map(|t| (t.step as f64, pct(t.accuracy[i]))).collect(),
                    1,
                ));
            }
            for (i, (name, color)) in NETS.iter().enumerate() {
                series.push(Series::line(&format!("{name}: test"), *color, v.history.iter().map(|h| (h.step as f64, pct(h.accuracy[i]))).collect(), 2));
            }
            series.push(Series::line(
                "BN: test, training mode",
                palette(3),
                v.history.iter().map(|h| (h.step as f64, pct(h.bn_train_mode_accuracy))).collect(),
                2,
            ));
            series
        }) else {
            return;
        };
        let last = series.iter().filter_map(|s| s.points.last().map(|p| p.0)).fold(10.0, f64::max);
        let (from, x_label, log_x) = step_axis(&mode, last);
        // The lowest point in view sets the floor: the first steps' mini-batches show on the log
        // axis (as in the other labs' accuracy charts); the recent window zooms in.
        let lo = series.iter().flat_map(|s| s.points.iter().filter(|p| p.0 >= from).map(|p| p.1)).filter(|v| v.is_finite()).fold(100.0f64, f64::min);
        let floor = ((lo - 2.0) / 10.0).floor().clamp(0.0, 9.0) * 10.0;
        state.draw_soon("bn-accuracy-chart", move || {
            let spec = ChartSpec {
                title: "Accuracy",
                x_label,
                y_label: "accuracy (%)",
                log_y: false,
                x_range: Some((from, last)),
                y_range: Some((floor, 100.0)),
                band: None,
                log_x,
            };
            chart::draw(&c, &spec, &series);
        });
    });
    view! {
        <canvas id="bn-accuracy-chart" node_ref=canvas width="560" height="280"></canvas>
        <AxisSelect axis/>
    }
}

/// Figure 1 (b, c): the tracked unit's sigmoid input, 15th / 50th / 85th percentiles over the
/// test images, for each net.
#[component]
pub fn PercentileCharts(state: LabState) -> impl IntoView {
    let canvases = [NodeRef::<html::Canvas>::new(), NodeRef::<html::Canvas>::new()];
    for (i, canvas) in canvases.into_iter().enumerate() {
        redraw_on(
            state,
            canvas,
            if i == 0 { "bn-pct-plain" } else { "bn-pct-bn" },
            |v| (v.history.len(), v.history.last().map(|h| h.step)),
            move |v, c| {
                let (name, color) = NETS[i];
                let names = ["15th percentile", "median", "85th percentile"];
                let series: Vec<Series> = (0..3)
                    .map(|p| {
                        let shade = if p == 1 { color } else { lighter(color, 0.45) };
                        Series::line(
                            names[p],
                            shade,
                            v.history.iter().map(|h| (h.step as f64, h.percentiles[i][p] as f64)).collect(),
                            if p == 1 { 2 } else { 1 },
                        )
                    })
                    .collect();
                let drift = v.drift[i];
                let title =
                    if drift.is_finite() { format!("{name}: unit input (moved {drift:.2} × its spread)") } else { format!("{name}: the unit's input") };
                let last = v.history.last().map(|h| h.step as f64).unwrap_or(1.0).max(1.0);
                let c = c.clone();
                Box::new(move || {
                    let spec = ChartSpec {
                        title: &title,
                        x_label: "training step",
                        y_label: "activation input",
                        log_y: false,
                        x_range: Some((0.0, last)),
                        y_range: None,
                        band: None,
                        log_x: false,
                    };
                    chart::draw(&c, &spec, &series);
                })
            },
        );
    }
    let unit = move || {
        let c = config(&state);
        format!(
            "Figure 1 (b, c) of the BN paper: the input of unit {} of the last hidden layer (before its {}), over all 10,000 test images at each evaluation. \
             “Moved” = how far the three percentiles travelled after step 0, over the latest 15–85 spread.",
            c.unit,
            c.act.label()
        )
    };
    view! {
        <div class="card" id="percentiles">
            <h4 class="card-title">"One unit's input distribution over training"</h4>
            <p class="muted small">{unit}</p>
            <div class="charts">
                <canvas id="bn-pct-plain" node_ref=canvases[0] width="520" height="240"></canvas>
                <canvas id="bn-pct-bn" node_ref=canvases[1] width="520" height="240"></canvas>
            </div>
        </div>
    }
}

/// One histogram-over-time heat map.
fn draw_heat(canvas: &HtmlCanvasElement, title: &str, v: &BnView, net: usize, layer: usize, quantity: usize) {
    let Some(backend) = Canvas::on(canvas) else { return };
    let root = backend.into_drawing_area();
    let _ = root.fill(&WHITE);
    let cols = &v.columns;
    let n = cols.len();
    let hists: Vec<(&[u8], (f32, f32))> = (0..n).filter_map(|c| cols.histogram(net, layer, quantity, c)).collect();
    let (lo, hi) = hists.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), (_, (l, h))| if l < h { (a.min(*l), b.max(*h)) } else { (a, b) });
    let (lo, hi) = if lo < hi { (lo as f64, hi as f64) } else { (-1.0, 1.0) };
    let last = cols.steps.last().copied().unwrap_or(1) as f64;
    let first = cols.steps.first().copied().unwrap_or(0) as f64;
    let end = last + ((last - first) / n.max(1) as f64).max(1.0);
    let Ok(mut chart) = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 13).into_font().color(&INK))
        .margin(6)
        .x_label_area_size(40)
        .y_label_area_size(52)
        .build_cartesian_2d(first..end, lo..hi)
    else {
        return;
    };
    let _ = chart
        .configure_mesh()
        .x_desc("training step")
        .y_desc("value")
        .x_labels(4)
        .y_labels(6)
        .x_label_formatter(&|v| chart::axis_number(*v, end - first))
        .y_label_formatter(&|v| chart::axis_number(*v, hi - lo))
        .label_style(("sans-serif", 12).into_font().color(&INK))
        .axis_desc_style(("sans-serif", 12).into_font().color(&INK))
        .disable_mesh()
        .draw();
    let color = NETS[net].1;
    let mut cells = Vec::new();
    for (c, (bins, (a, b))) in hists.iter().enumerate() {
        let x0 = cols.steps[c] as f64;
        let x1 = cols.steps.get(c + 1).map(|&s| s as f64).unwrap_or(end);
        let width = (*b - *a) as f64 / bins.len() as f64;
        for (k, &count) in bins.iter().enumerate() {
            if count == 0 {
                continue;
            }
            let y0 = if width > 0.0 { *a as f64 + k as f64 * width } else { *a as f64 - (hi - lo) * 0.01 };
            let y1 = if width > 0.0 { y0 + width } else { *a as f64 + (hi - lo) * 0.01 };
            cells.push(Rectangle::new([(x0, y0), (x1, y1)], color.mix(0.08 + 0.92 * count as f64 / 255.0).filled()));
        }
    }
    let _ = chart.draw_series(cells);
    let _ = root.present();
}

/// Histograms over time of one quantity, every hidden layer, both nets side by side.
#[component]
pub fn HeatMaps(state: LabState) -> impl IntoView {
    let quantity = RwSignal::new(0usize);
    let host = NodeRef::<html::Div>::new();
    let layers = Memo::new(move |_| with_view(&state, |v| v.columns.layers).unwrap_or(0));
    let key = Memo::new(move |_| with_view(&state, |v| (v.columns.len(), v.columns.steps.last().copied())));
    Effect::new(move |_| {
        let _ = key.get();
        let (q, layers) = (quantity.get(), layers.get());
        let Some(host) = host.get() else { return };
        let document = web_sys::window().and_then(|w| w.document()).expect("a page");
        // One canvas per (layer, net), created when the layer count changes.
        while host.child_element_count() as usize > 2 * layers {
            if let Some(last) = host.last_element_child() {
                last.remove();
            }
        }
        while (host.child_element_count() as usize) < 2 * layers {
            let canvas = document.create_element("canvas").expect("canvas");
            let _ = canvas.set_attribute("width", "420");
            let _ = canvas.set_attribute("height", "150");
            let _ = canvas.set_attribute("class", "heat");
            let _ = host.append_child(&canvas);
        }
        let children = host.children();
        for layer in 0..layers {
            for net in 0..2 {
                let Some(canvas) = children.item((2 * layer + net) as u32).and_then(|e| wasm_bindgen::JsCast::dyn_into::<HtmlCanvasElement>(e).ok()) else {
                    continue;
                };
                let job_state = state;
                state.draw_soon(HEAT_IDS[(2 * layer + net).min(HEAT_IDS.len() - 1)], move || {
                    job_state.snapshot.with_untracked(|s| {
                        if let Some(engine::lab::View::Batchnorm(v)) = s.as_ref().map(|s| &s.view) {
                            let title = format!("{} · layer {} · {}", NETS[net].0, layer + 1, QUANTITIES[q]);
                            draw_heat(&canvas, &title, v, net, layer, q);
                        }
                    });
                });
            }
        }
    });
    let buttons = QUANTITIES
        .iter()
        .enumerate()
        .map(|(i, q)| view! { <button class:active=move || quantity.get() == i id=format!("heat-q{i}") on:click=move |_| quantity.set(i)>{*q}</button> })
        .collect_view();
    view! {
        <div class="card" id="heatmaps">
            <h4 class="card-title">"Histograms over time, layer by layer (left: plain · right: with BN)"</h4>
            <div class="pad-row tabs">{buttons}</div>
            <p class="muted small">"Each column is a histogram of the last mini-batch at that step (weights: the whole matrix); darker = more values. Watch the plain net's deeper layers spread out, squash or vanish while the BN net's stay put."</p>
            <div class="heat-grid" node_ref=host></div>
        </div>
    }
}

/// Draw-queue keys of the heat maps (the queue keeps the latest job per key).
const HEAT_IDS: [&str; 12] = ["heat-0", "heat-1", "heat-2", "heat-3", "heat-4", "heat-5", "heat-6", "heat-7", "heat-8", "heat-9", "heat-10", "heat-11"];

/// Per-layer numbers over time for each net: % saturated or dead, and the update:data ratio.
#[component]
pub fn LayerSeriesCharts(state: LabState) -> impl IntoView {
    let which = RwSignal::new(2usize);
    let canvases = [NodeRef::<html::Canvas>::new(), NodeRef::<html::Canvas>::new()];
    let key = Memo::new(move |_| with_view(&state, |v| (v.columns.len(), v.columns.steps.last().copied())));
    for (net, canvas) in canvases.into_iter().enumerate() {
        Effect::new(move |_| {
            let _ = key.get();
            let w = which.get();
            let Some(c) = canvas.get() else { return };
            let act = config(&state).act;
            let Some((series, names)) = state.snapshot.with_untracked(|s| match s.as_ref().map(|s| &s.view) {
                Some(engine::lab::View::Batchnorm(v)) => {
                    let cols = &v.columns;
                    let layers = if w == 2 { cols.dense } else { cols.layers };
                    let mut series: Vec<Series> = (0..layers)
                        .map(|k| {
                            let values = cols.series(net, k, if w == 0 && act == engine::ops::ActivationKind::Relu { 1 } else { w });
                            let scale = if w == 2 { 1.0 } else { 100.0 };
                            let label = v.dense_names.get(k).cloned().unwrap_or_default();
                            Series {
                                label,
                                color: palette(k),
                                points: cols.steps.iter().zip(values).map(|(&s, &y)| (s as f64, y as f64 * scale)).collect(),
                                dots: false,
                                width: 2,
                            }
                        })
                        .collect();
                    if w == 2 {
                        let span = (cols.steps.first().copied().unwrap_or(0) as f64, cols.steps.last().copied().unwrap_or(1) as f64);
                        series.push(Series::line("1e-3 guide", GREY, vec![(span.0, -3.0), (span.1, -3.0)], 1));
                    }
                    Some((series, NETS[net].0))
                }
                _ => None,
            }) else {
                return;
            };
            let relu = act == engine::ops::ActivationKind::Relu;
            let (title, y_label, range) = match w {
                2 => (format!("{names}: update:data ratio per layer"), "log10(‖Δw‖ / ‖w‖)", None),
                _ if relu => (format!("{names}: dead ReLUs per layer"), "% of units never positive", Some((0.0, 100.0))),
                _ => (format!("{names}: saturated activations per layer"), "% of values saturated", Some((0.0, 100.0))),
            };
            state.draw_soon(if net == 0 { "bn-series-plain" } else { "bn-series-bn" }, move || {
                let spec =
                    ChartSpec { title: &title, x_label: "training step", y_label, log_y: false, x_range: None, y_range: range, band: None, log_x: false };
                chart::draw(&c, &spec, &series);
            });
        });
    }
    view! {
        <div class="card" id="layer-series">
            <h4 class="card-title">"Layer health over time"</h4>
            <div class="pad-row tabs">
                <button id="series-update" class:active=move || which.get() == 2 on:click=move |_| which.set(2)>"update:data ratio"</button>
                <button id="series-saturation" class:active=move || which.get() == 0 on:click=move |_| which.set(0)>"% saturated / dead"</button>
            </div>
            <p class="muted small">"Update:data is the size of each step relative to the weights (log10): around −3 (one thousandth per step) is healthy; far below, a layer learns slowly; far above, it thrashes. Saturated: |tanh| > 0.97 or sigmoid outside [0.03, 0.97]; dead: a ReLU not positive for any example of the mini-batch."</p>
            <div class="charts">
                <canvas id="bn-series-plain" node_ref=canvases[0] width="520" height="240"></canvas>
                <canvas id="bn-series-bn" node_ref=canvases[1] width="520" height="240"></canvas>
            </div>
        </div>
    }
}

/// The latest gradient sizes by depth, both nets in one chart each.
#[component]
pub fn DepthCharts(state: LabState) -> impl IntoView {
    let canvases = [NodeRef::<html::Canvas>::new(), NodeRef::<html::Canvas>::new()];
    for (chart_index, canvas) in canvases.into_iter().enumerate() {
        redraw_on(
            state,
            canvas,
            if chart_index == 0 { "bn-depth-grad" } else { "bn-depth-ratio" },
            |v| (v.columns.len(), v.columns.steps.last().copied()),
            move |v, c| {
                let cols = &v.columns;
                let last = cols.len().saturating_sub(1);
                let series_index = if chart_index == 0 { 4 } else { 3 };
                let series: Vec<Series> = NETS
                    .iter()
                    .enumerate()
                    .map(|(net, (name, color))| {
                        let points = (0..cols.dense)
                            .map(|k| ((k + 1) as f64, cols.series(net, k, series_index).get(last).copied().unwrap_or(f32::NAN) as f64))
                            .collect();
                        Series::line(name, *color, points, 2)
                    })
                    .collect();
                let (title, y_label) = if chart_index == 0 {
                    ("Mean |∂L/∂W| by depth (does it shrink towards the input?)", "mean |gradient| (log)")
                } else {
                    ("Gradient:data ratio by depth", "std(∂L/∂W) / std(W) (log)")
                };
                let dense = cols.dense as f64;
                let c = c.clone();
                Box::new(move || {
                    let spec = ChartSpec {
                        title,
                        x_label: "dense layer (1 = next to the input)",
                        y_label,
                        log_y: true,
                        x_range: Some((0.8, dense + 0.2)),
                        y_range: None,
                        band: None,
                        log_x: false,
                    };
                    chart::draw_whole_x(&c, &spec, &series);
                })
            },
        );
    }
    view! {
        <div class="charts chart-pair">
            <div class="card"><canvas id="bn-depth-grad" node_ref=canvases[0] width="560" height="260"></canvas></div>
            <div class="card"><canvas id="bn-depth-ratio" node_ref=canvases[1] width="560" height="260"></canvas></div>
        </div>
    }
}

/// Running statistics against the last mini-batch's, per BN layer, and "calibrate".
#[component]
pub fn RunningStats(state: LabState) -> impl IntoView {
    let canvases = [NodeRef::<html::Canvas>::new(), NodeRef::<html::Canvas>::new()];
    for (which, canvas) in canvases.into_iter().enumerate() {
        redraw_on(
            state,
            canvas,
            if which == 0 { "bn-stats-mean" } else { "bn-stats-var" },
            |v| v.bn_stats.clone(),
            move |v, c| {
                let mut series: Vec<Series> = v
                    .bn_stats
                    .iter()
                    .map(|s| {
                        let (batch, running) = if which == 0 { (&s.batch_mean, &s.running_mean) } else { (&s.batch_var, &s.running_var) };
                        Series::dots(
                            &format!("BN layer {}", s.layer + 1),
                            palette(s.layer),
                            batch.iter().zip(running).map(|(&b, &r)| (b as f64, r as f64)).collect(),
                            3,
                        )
                    })
                    .collect();
                let all: Vec<f64> = series.iter().flat_map(|s| s.points.iter().flat_map(|p| [p.0, p.1])).filter(|v| v.is_finite()).collect();
                let (lo, hi) = all.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
                let (lo, hi) = if lo < hi { (lo, hi) } else { (-1.0, 1.0) };
                series.push(Series::line("running = batch", GREY, vec![(lo, lo), (hi, hi)], 1));
                let title = if which == 0 { "Means: running vs this batch" } else { "Variances: running vs this batch" };
                let c = c.clone();
                Box::new(move || {
                    let spec = ChartSpec {
                        title,
                        x_label: "last mini-batch's statistic",
                        y_label: "running statistic",
                        log_y: false,
                        x_range: Some((lo, hi)),
                        y_range: Some((lo, hi)),
                        band: None,
                        log_x: false,
                    };
                    chart::draw(&c, &spec, &series);
                })
            },
        );
    }
    let message = move || with_view(&state, |v| v.calibrated.clone()).flatten();
    view! {
        <div class="card" id="running-stats">
            <h4 class="card-title">"The BN net's running statistics (what evaluation mode uses)"</h4>
            <p class="muted small">"Each dot is one feature (the first 64 of each BN layer). On the diagonal, the running averages match the current batch; tiny batches scatter them. “Calibrate” recomputes them over the training set with the weights as they are now, then re-evaluates."</p>
            <div class="pad-row">
                <button id="calibrate" on:click=move |_| state.command(LabCommand::Batchnorm(BnCommand::Calibrate))>"Calibrate running statistics"</button>
                <span class="muted small" id="calibrated">{move || message().unwrap_or_default()}</span>
            </div>
            <div class="charts">
                <canvas id="bn-stats-mean" node_ref=canvases[0] width="520" height="260"></canvas>
                <canvas id="bn-stats-var" node_ref=canvases[1] width="520" height="260"></canvas>
            </div>
        </div>
    }
}
