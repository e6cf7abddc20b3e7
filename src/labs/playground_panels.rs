//! The playground's panels: the network graph (hover a link or neuron, click a link to edit its
//! weight), the output over the plane (click to add your own points), and the confusion matrix
//! with export / import.

use super::playground::{config, download, read_file, with_view};
use super::playground_draw as draw;
use crate::client::LabState;
use crate::components::controls::Check;
use engine::data::playground::{PlayData, Point, Problem};
use engine::lab::playground::{PlaygroundCommand, PlaygroundReply};
use engine::lab::{LabCommand, LabReply, Notice};
use leptos::html;
use leptos::prelude::*;

/// Where a mouse event is on a canvas, in the canvas' own pixels.
fn canvas_offset(ev: &web_sys::MouseEvent, canvas: &web_sys::HtmlCanvasElement) -> (f64, f64) {
    let r = canvas.get_bounding_client_rect();
    let sx = canvas.width() as f64 / r.width().max(1.0);
    let sy = canvas.height() as f64 / r.height().max(1.0);
    ((ev.client_x() as f64 - r.left()) * sx, (ev.client_y() as f64 - r.top()) * sy)
}

#[component]
pub fn GraphCard(state: LabState) -> impl IntoView {
    let graph_canvas = NodeRef::<html::Canvas>::new();
    let hover = RwSignal::new(None::<(usize, usize, usize)>);
    let hover_text = RwSignal::new(String::from("Hover over a link or a neuron; click a link to edit its weight."));
    let graph_height = RwSignal::new(360u32);
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
        pointer.set(Some(canvas_offset(&ev, &canvas)));
    };
    let on_graph_click = move |ev: web_sys::MouseEvent| {
        let Some(canvas) = graph_canvas.get() else {
            return;
        };
        let (px, py) = canvas_offset(&ev, &canvas);
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
    view! {
        <div class="card">
            <h4 class="card-title">"Network (each neuron shows its output over the plane)"</h4>
            <canvas id="graph" node_ref=graph_canvas width="560" height="360"
                on:mousemove=on_graph_move on:click=on_graph_click on:mouseleave=move |_| pointer.set(None)></canvas>
            <p class="muted small" id="hover-text">{move || hover_text.get()}</p>
        </div>
    }
}

#[component]
pub fn HeatmapCard(state: LabState, new_class: RwSignal<u8>) -> impl IntoView {
    let heat_canvas = NodeRef::<html::Canvas>::new();
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
    let on_heat_click = move |ev: web_sys::MouseEvent| {
        if config(&state).data != PlayData::Custom {
            return;
        }
        let Some(canvas) = heat_canvas.get() else {
            return;
        };
        let (px, py) = canvas_offset(&ev, &canvas);
        let Some((x, y)) = draw::from_px(px, py) else {
            return;
        };
        let mut points: Vec<Point> = with_view(&state, |v| v.train.iter().chain(&v.test).copied().collect()).unwrap_or_default();
        points.push(Point { x, y, label: new_class.get_untracked() as f32 });
        state.command(LabCommand::Playground(PlaygroundCommand::SetPoints { points }));
    };
    view! {
        <div class="card">
            <h4 class="card-title">
                {move || if config(&state).data.problem() == Problem::Regression { "Output: the prediction over the plane" } else { "Output: the decision boundary over the plane" }}
            </h4>
            <canvas id="heatmap" node_ref=heat_canvas width="444" height="444" on:click=on_heat_click></canvas>
            <ColorScale state/>
            <div class="display-row">
                <span class="muted small" id="point-count">{move || with_view(&state, |v| format!("{} points: {} train, {} test", v.train.len() + v.test.len(), v.train.len(), v.test.len()))}</span>
                <Check state key="showtest" label="show test points"/>
                <Check state key="discretize" label="discretise output"/>
            </div>
        </div>
    }
}

/// What the output plot's colours mean: a value scale for regression, the two classes' odds for
/// binary data (multi-class plots colour by class, named in the confusion matrix).
#[component]
fn ColorScale(state: LabState) -> impl IntoView {
    let labels = move || match config(&state).data.problem() {
        Problem::Regression => Some(["−1 or less", "0", "+1 or more"]),
        Problem::Binary => Some(["class 0 (orange) certain", "50 : 50", "class 1 (blue) certain"]),
        Problem::MultiClass(_) => None,
    };
    move || {
        labels().map(|[lo, mid, hi]| {
            view! {
                <div class="color-scale" id="color-scale">
                    <div class="color-scale-bar"></div>
                    <div class="color-scale-labels"><span>{lo}</span><span>{mid}</span><span>{hi}</span></div>
                </div>
            }
        })
    }
}

/// The confusion matrix (test points), and export / import of the whole state.
#[component]
pub fn ExportCard(state: LabState) -> impl IntoView {
    let on_import =
        move |ev: leptos::ev::Event| read_file(state, "import", &ev, move |json| state.command(LabCommand::Playground(PlaygroundCommand::Import { json })));
    Effect::new(move |_| {
        if let Some(LabReply::Playground(PlaygroundReply::Exported { json })) = state.reply.get() {
            download("deeply-playground.json", &json);
        }
    });
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
    view! {
        <div class="card">
            {confusion}
            <div class="export-row">
                <button id="export" on:click=move |_| state.command(LabCommand::Playground(PlaygroundCommand::Export))>"Export weights + config (JSON)"</button>
                <label class="button-like">"Import…"<input id="import-file" type="file" accept=".json,application/json" on:change=on_import/></label>
            </div>
            <p class="muted small">"Export saves the link, the step counters, every weight and your own points; Import restores them exactly."</p>
        </div>
    }
}
