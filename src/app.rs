//! The app shell: reads the link, picks the lab, shows notices about the link, and wires the
//! keyboard shortcuts.

use crate::client::LabState;
use crate::labs::bench::BenchPage;
use crate::labs::cnn::CnnLab;
use crate::labs::fit::FitLab;
use crate::labs::playground::PlaygroundLab;
use crate::share;
use engine::lab::parse_link;
use leptos::prelude::*;
use wasm_bindgen::JsCast;

#[component]
pub fn App() -> impl IntoView {
    let href = share::current_href();
    let pairs = engine::lab::link::query_pairs(&href);
    if pairs.iter().any(|(k, v)| k == "lab" && v == "bench") {
        let get = |key: &str| pairs.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        let workload = get("workload").unwrap_or_else(|| "w1".into());
        let seconds = get("seconds").and_then(|s| s.parse().ok()).unwrap_or(3.0);
        return view! {
            <header class="topbar"><div class="brand">"Deeply"<span class="tagline">"benchmark"</span></div></header>
            <main><BenchPage workload seconds/></main>
        }
        .into_any();
    }
    let parsed = parse_link(&href);
    let lab = parsed.config.lab();
    let state = LabState::new(parsed.config, parsed.notices, parsed.hidden_controls);

    let handle = window_event_listener(leptos::ev::keydown, move |ev: web_sys::KeyboardEvent| {
        let typing = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            .map(|e| matches!(e.tag_name().as_str(), "INPUT" | "SELECT" | "TEXTAREA"))
            .unwrap_or(false);
        if typing || ev.ctrl_key() || ev.meta_key() || ev.alt_key() {
            return;
        }
        match ev.key().as_str() {
            " " => {
                ev.prevent_default();
                state.toggle_play();
            }
            "s" => state.step_once(),
            "r" => state.reset(),
            _ => {}
        }
    });
    on_cleanup(move || handle.remove());

    let notices = move || {
        state.notices.with(|n| {
            n.iter().map(|n| view! { <li><code>{n.key.clone()}</code>": "{n.message.clone()}</li> }).collect_view()
        })
    };

    view! {
        <header class="topbar">
            <div class="brand">"Deeply"<span class="tagline">"deep learning, trained live in your browser"</span></div>
            <nav>
                <a class:active=lab == "fit" href="?lab=fit" id="nav-fit">"1 · Fit a function"</a>
                <a class:active=lab == "playground" href="?lab=playground" id="nav-playground">"Playground"</a>
                <a class:active=lab == "cnn" href="?lab=cnn" id="nav-cnn">"2 · CNN"</a>
            </nav>
        </header>
        <Show when=move || state.notices.with(|n| !n.is_empty())>
            <div class="notices" id="notices" role="alert">
                <div>
                    <strong>"Some settings could not be used; defaults were kept:"</strong>
                    <ul>{notices}</ul>
                </div>
                <button class="ghost" on:click=move |_| state.notices.set(Vec::new()) title="dismiss">"✕"</button>
            </div>
        </Show>
        <main>
            {if lab == "cnn" {
                view! {
                    <div class="intro">
                        <h1>"CNN on real MNIST"</h1>
                        <p>"A convolutional network learns to read handwritten digits (or clothes, with Fashion-MNIST) from the real 60,000 training images, right here in a worker. A convolution written as loops is correct but slow; the same maths as one matrix product (im2col) is fast — the race below times both on the same mini-batch. Watch the filters form, look inside the network at a test image, and draw your own digit."</p>
                    </div>
                    <CnnLab state/>
                }.into_any()
            } else if lab == "playground" {
                view! {
                    <div class="intro">
                        <h1>"Playground"</h1>
                        <p>"Classify or regress points in the plane with a small network. Pick data and input features, add layers and units, and watch each neuron's view of the plane and the decision boundary while it trains. TensorFlow Playground links open here too."</p>
                    </div>
                    <PlaygroundLab state/>
                }.into_any()
            } else {
                view! {
                    <div class="intro">
                        <h1>"Fit a function"</h1>
                        <p>"A small network of layers "<code>"y = act(Wx + b)"</code>" learns a function from sampled points by gradient descent. Press Play and watch the prediction bend towards the target; change the learning rate or batch size while it runs."</p>
                    </div>
                    <FitLab state/>
                }.into_any()
            }}
        </main>
    }
    .into_any()
}
