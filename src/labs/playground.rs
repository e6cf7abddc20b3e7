//! The playground: 2-D classification and regression, TensorFlow Playground's features and more
//! (own points and CSV, per-layer activations, dropout, schedules, confusion matrix, export).

use super::playground_draw as draw;
use crate::client::LabState;
use crate::components::chart::{self, ChartSpec, Series, BLUE, GREY, ORANGE};
use crate::components::controls::{options, Check, Field, Select};
use crate::components::stats_bar::StatsBar;
use crate::components::Toolbar;
use engine::data::playground::{parse_csv, PlayData, Point, Problem};
use engine::lab::playground::{PlaygroundCommand, PlaygroundConfig, PlaygroundReply, PlaygroundView, MAX_LAYERS, MAX_UNITS};
use engine::lab::{LabCommand, LabConfig, LabReply, Notice, View};
use engine::ops::ActivationKind;
use engine::optim::{OptimizerKind, Schedule};
use leptos::html;
use leptos::prelude::*;
use wasm_bindgen::JsCast;

fn config(state: &LabState) -> PlaygroundConfig {
    match state.config.get() {
        LabConfig::Playground(c) => c,
        _ => PlaygroundConfig::default(),
    }
}

fn with_view<R>(state: &LabState, f: impl FnOnce(&PlaygroundView) -> R) -> Option<R> {
    state.snapshot.with(|s| match s.as_ref().map(|s| &s.view) {
        Some(View::Playground(v)) => Some(f(v)),
        _ => None,
    })
}

/// Reads a chosen file's text, then hands it to `then`.
fn read_file(ev: &leptos::ev::Event, then: impl FnOnce(String) + 'static) {
    let Some(input) = ev.target().and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok()) else {
        return;
    };
    let Some(file) = input.files().and_then(|f| f.get(0)) else {
        return;
    };
    input.set_value("");
    leptos::task::spawn_local(async move {
        if let Ok(text) = wasm_bindgen_futures::JsFuture::from(file.text()).await {
            then(text.as_string().unwrap_or_default());
        }
    });
}

fn download(name: &str, text: &str) {
    let parts = js_sys::Array::of1(&text.into());
    let options = web_sys::BlobPropertyBag::new();
    options.set_type("application/json");
    let Ok(blob) = web_sys::Blob::new_with_str_sequence_and_options(&parts, &options) else {
        return;
    };
    let Ok(url) = web_sys::Url::create_object_url_with_blob(&blob) else {
        return;
    };
    if let Some(a) =
        web_sys::window().and_then(|w| w.document()).and_then(|d| d.create_element("a").ok()).and_then(|e| e.dyn_into::<web_sys::HtmlAnchorElement>().ok())
    {
        a.set_href(&url);
        a.set_download(name);
        a.click();
    }
    let _ = web_sys::Url::revoke_object_url(&url);
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

#[component]
pub fn PlaygroundLab(state: LabState) -> impl IntoView {
    let heat_canvas = NodeRef::<html::Canvas>::new();
    let graph_canvas = NodeRef::<html::Canvas>::new();
    let loss_canvas = NodeRef::<html::Canvas>::new();
    let hover = RwSignal::new(None::<(usize, usize, usize)>);
    let hover_text = RwSignal::new(String::from("Hover over a link or a neuron; click a link to edit its weight."));
    let new_class = RwSignal::new(1u8);
    let graph_height = RwSignal::new(360u32);

    Effect::new(move |_| {
        let (show_test, discretize) = {
            let c = config(&state);
            (c.showtest, c.discretize)
        };
        let Some(canvas) = heat_canvas.get() else {
            return;
        };
        with_view(&state, |v| draw::draw_heatmap(&canvas, v, show_test, discretize));
    });
    Effect::new(move |_| {
        let Some(canvas) = graph_canvas.get() else {
            return;
        };
        let hot = hover.get();
        with_view(&state, |v| {
            let h = draw::graph_height(v) as u32;
            if canvas.height() != h {
                canvas.set_height(h);
                graph_height.set(h);
            }
            draw::draw_graph(&canvas, v, hot);
        });
    });
    Effect::new(move |_| {
        let Some(canvas) = loss_canvas.get() else {
            return;
        };
        let batch: Vec<(f64, f64)> = state.records.with(|r| r.iter().map(|p| (p.step as f64, p.loss as f64)).collect());
        state.history.with(|h| {
            let last = h.last().map(|p| p.step as f64).unwrap_or(0.0).max(batch.last().map(|p| p.0).unwrap_or(0.0)).max(10.0);
            chart::draw(
                &canvas,
                &ChartSpec {
                    title: "Loss (log scale)",
                    x_label: "training step",
                    y_label: "loss",
                    log_y: true,
                    x_range: Some((0.0, last)),
                    y_range: None,
                    band: None,
                },
                &[
                    Series::line("mini-batch", GREY, batch, 1),
                    Series::line("train", BLUE, h.iter().map(|p| (p.step as f64, p.train_loss as f64)).collect(), 2),
                    Series::line("test", ORANGE, h.iter().map(|p| (p.step as f64, p.test_loss as f64)).collect(), 2),
                ],
            );
        });
    });

    let offset = |ev: &web_sys::MouseEvent, canvas: &web_sys::HtmlCanvasElement| {
        let r = canvas.get_bounding_client_rect();
        let sx = canvas.width() as f64 / r.width().max(1.0);
        let sy = canvas.height() as f64 / r.height().max(1.0);
        ((ev.client_x() as f64 - r.left()) * sx, (ev.client_y() as f64 - r.top()) * sy)
    };
    // What the pointer is over, recomputed when it moves and when a new snapshot arrives (so a
    // just-edited weight shows its new value).
    let pointer = RwSignal::new(None::<(f64, f64)>);
    Effect::new(move |_| {
        let Some((px, py)) = pointer.get() else {
            hover.set(None);
            return;
        };
        let Some(canvas) = graph_canvas.get_untracked() else {
            return;
        };
        let width = canvas.width() as f64;
        let text = with_view(&state, |v| {
            if let Some((c, i)) = draw::neuron_at(v, width, px, py) {
                hover.set(None);
                let m = &v.neurons[c][i];
                let name = if c == 0 { format!("input {}", v.feature_names[i]) } else { format!("neuron {c}.{}", i + 1) };
                Some(format!("{name}: output from {:.3} (orange) to {:.3} (blue) over the plane", m.lo, m.hi))
            } else if let Some((l, i, j)) = draw::link_at(v, width, px, py) {
                hover.set(Some((l, i, j)));
                let to = v.weights[l].len() / v.neurons[l].len().max(1);
                Some(format!("weight layer {} → {}: unit {} → unit {} = {:.4} (click to edit)", l, l + 1, i + 1, j + 1, v.weights[l][i * to + j]))
            } else {
                hover.set(None);
                None
            }
        });
        if let Some(Some(t)) = text {
            hover_text.set(t);
        }
    });
    let on_graph_move = move |ev: web_sys::MouseEvent| {
        let Some(canvas) = graph_canvas.get() else {
            return;
        };
        pointer.set(Some(offset(&ev, &canvas)));
    };
    let on_graph_click = move |ev: web_sys::MouseEvent| {
        let Some(canvas) = graph_canvas.get() else {
            return;
        };
        let (px, py) = offset(&ev, &canvas);
        let width = canvas.width() as f64;
        let Some(Some(((l, i, j), current))) = with_view(&state, |v| {
            draw::link_at(v, width, px, py).map(|(l, i, j)| {
                let to = v.weights[l].len() / v.neurons[l].len().max(1);
                ((l, i, j), v.weights[l][i * to + j])
            })
        }) else {
            return;
        };
        let answer = web_sys::window()
            .and_then(|w| w.prompt_with_message_and_default(&format!("New weight for unit {} → {}", i + 1, j + 1), &format!("{current:.4}")).ok().flatten());
        match answer.map(|a| a.trim().parse::<f32>()) {
            Some(Ok(value)) if value.is_finite() && value.abs() <= 100.0 => {
                state.command(LabCommand::Playground(PlaygroundCommand::SetWeight { layer: l, from: i, to: j, value }))
            }
            Some(_) => state.notices.update(|n| n.push(Notice { key: "weight".into(), message: "a weight must be a number from −100 to 100".into() })),
            None => {}
        }
    };
    let on_heat_click = move |ev: web_sys::MouseEvent| {
        if config(&state).data != PlayData::Custom {
            return;
        }
        let Some(canvas) = heat_canvas.get() else {
            return;
        };
        let (px, py) = offset(&ev, &canvas);
        let Some((x, y)) = draw::from_px(px, py) else {
            return;
        };
        let mut points: Vec<Point> = with_view(&state, |v| v.train.iter().chain(&v.test).copied().collect()).unwrap_or_default();
        points.push(Point { x, y, label: new_class.get_untracked() as f32 });
        state.command(LabCommand::Playground(PlaygroundCommand::SetPoints { points }));
    };
    let on_csv = move |ev: leptos::ev::Event| {
        read_file(&ev, move |text| {
            let classes = match config(&state).data.problem() {
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
    let on_import = move |ev: leptos::ev::Event| read_file(&ev, move |json| state.command(LabCommand::Playground(PlaygroundCommand::Import { json })));
    Effect::new(move |_| {
        if let Some(LabReply::Playground(PlaygroundReply::Exported { json })) = state.reply.get() {
            download("deeply-playground.json", &json);
        }
    });
    let new_seed = move |_| state.set_value("seed", &((js_sys::Math::random() * 1e9) as u64).to_string());
    let confusion = move || {
        with_view(&state, |v| {
            if v.confusion.len() < 2 {
                return None;
            }
            let names = ["orange (0)", "blue (1)", "green (2)"];
            let rows = v
                .confusion
                .iter()
                .enumerate()
                .map(|(t, row)| {
                    let cells = row.iter().enumerate().map(|(p, &n)| view! { <td class:diag=t == p>{n}</td> }).collect_view();
                    view! { <tr><th>{names[t]}</th>{cells}</tr> }
                })
                .collect_view();
            let head = (0..v.confusion.len()).map(|p| view! { <th>{names[p]}</th> }).collect_view();
            Some(view! {
                <table class="confusion" id="confusion">
                    <caption>"Confusion matrix (test points): rows = true class, columns = predicted"</caption>
                    <tr><th></th>{head}</tr>
                    {rows}
                </table>
            })
        })
        .flatten()
    };
    let feature = |key: &'static str, label: &'static str| view! { <Check state key label/> };
    let is_custom = move || config(&state).data == PlayData::Custom;
    let act_opts = options(&ActivationKind::ALL, ActivationKind::label);

    view! {
        <div class="lab">
            <aside class="controls">
                <section>
                    <h3>"Data"</h3>
                    <Select state key="data" label="dataset" options=options(&PlayData::ALL, PlayData::label)/>
                    <Field state key="noise" label="noise" step="0.05" help="0 to 0.5"/>
                    <Field state key="ptrain" label="training %" step="10" help="share of points used for training (10–90)"/>
                    <Field state key="n" label="points" step="50"/>
                    <div class="seed-row">
                        <Field state key="seed" label="seed" step="1"/>
                        <button id="regenerate" title="new data and weights from a new seed" on:click=new_seed>"new"</button>
                    </div>
                    <div class="own-data">
                        <p class="muted small">{move || if is_custom() { "Click the output plot to add a point of the chosen class." } else { "Choose “your own points” to click points in, or load a CSV of x,y,label." }}</p>
                        <label class="field"><span>"class to add"</span>
                            <select id="new-class" on:change=move |ev| new_class.set(event_target_value(&ev).parse().unwrap_or(1))>
                                <option value="1">"blue (1)"</option><option value="0">"orange (0)"</option><option value="2">"green (2)"</option>
                            </select>
                        </label>
                        <label class="field file"><span>"load CSV"</span><input id="csv-file" type="file" accept=".csv,text/csv,text/plain" on:change=on_csv/></label>
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
                    <Select state key="loss" label="loss" options=vec![("ce".into(), "cross-entropy"), ("mse".into(), "squared error")]/>
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
            </aside>
            <section class="workspace">
                <Toolbar state/>
                <StatsBar state/>
                <div class="play-grid">
                    <div class="card">
                        <h4 class="card-title">"Network (each neuron shows its output over the plane)"</h4>
                        <canvas id="graph" node_ref=graph_canvas width="560" height="360"
                            on:mousemove=on_graph_move on:click=on_graph_click on:mouseleave=move |_| pointer.set(None)></canvas>
                        <p class="muted small" id="hover-text">{move || hover_text.get()}</p>
                    </div>
                    <div class="card">
                        <h4 class="card-title">"Output: the decision boundary over the plane"</h4>
                        <canvas id="heatmap" node_ref=heat_canvas width="444" height="444" on:click=on_heat_click></canvas>
                        <div class="display-row">
                            <span class="muted small" id="point-count">{move || with_view(&state, |v| format!("{} points: {} train, {} test", v.train.len() + v.test.len(), v.train.len(), v.test.len()))}</span>
                            <Check state key="showtest" label="show test points"/>
                            <Check state key="discretize" label="discretise output"/>
                        </div>
                    </div>
                </div>
                <div class="play-grid">
                    <div class="card"><canvas id="loss-chart" node_ref=loss_canvas width="560" height="300"></canvas></div>
                    <div class="card">
                        {confusion}
                        <div class="export-row">
                            <button id="export" on:click=move |_| state.command(LabCommand::Playground(PlaygroundCommand::Export))>"Export weights + config (JSON)"</button>
                            <label class="button-like">"Import…"<input id="import-file" type="file" accept=".json,application/json" on:change=on_import/></label>
                        </div>
                        <p class="muted small">"Export saves the link, the step counters, every weight and your own points; Import restores them exactly."</p>
                    </div>
                </div>
            </section>
        </div>
    }
}
