//! The benchmark page (`?lab=bench&workload=w1`, or `w3`, which loads MNIST first; `&workers=N`,
//! `&batch=N` as the CLI's `--threads` and `--batch`): runs a workload in the training worker and
//! writes `{"workload", "items_per_s", "ms_per_step", "backend"}` as JSON into `#bench-results`.
//! `&backend=webgpu` runs it in the GPU worker (w2, w2bn, w3); without WebGPU the page says why
//! and runs it on the CPU (`"fallback"` in the JSON).

use crate::fatal;
use crate::protocol::{decode, encode, Command, Message};
use leptos::prelude::*;
use wasm_bindgen::prelude::*;
use web_sys::MessageEvent;

/// The two workers, by name in messages.
const CPU: &str = "the CPU worker";
const GPU: &str = "the GPU worker";

/// What a benchmark page runs: `workload` for `seconds` on `workers`, in mini-batches of `batch`
/// rows (None: the workload's own).
#[derive(Clone)]
struct Run {
    workload: String,
    seconds: f64,
    workers: engine::lab::WorkerCount,
    batch: Option<usize>,
}

/// Starts a worker (`url`: CPU or GPU) that runs `run` once it is ready; its answers go to
/// `result`, its loading progress to `loading`, and a missing WebGPU to `on_unavailable`.
fn start_worker(
    url: &str,
    run: Run,
    result: RwSignal<Option<Result<engine::lab::bench::BenchResult, String>>>,
    loading: RwSignal<Option<String>>,
    on_unavailable: impl Fn(String) + 'static,
) {
    let Run { workload, seconds, workers, batch } = run;
    let worker = match crate::client::new_worker(url == GPU) {
        Ok(w) => w,
        Err(e) => return result.set(Some(Err(format!("could not start {url}: {e:?}")))),
    };
    let w2 = worker.clone();
    let name = workload.clone();
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| match decode::<Message>(event.data()) {
        Ok(Message::Ready) => {
            let _ = w2.post_message(&encode(&Command::Bench { workload: name.clone(), seconds, workers, batch }));
        }
        Ok(Message::BenchDone { result: r }) => result.set(Some(r)),
        Ok(Message::Loading { what, loaded, total }) => {
            loading.set(Some(format!("Loading {what}: {:.1} of {:.1} MB…", loaded / 1e6, total / 1e6)));
        }
        Ok(Message::LoadFailed { message }) => result.set(Some(Err(message))),
        Ok(Message::GpuUnavailable { reason }) => {
            w2.terminate();
            on_unavailable(reason);
        }
        Ok(Message::Error { message }) => fatal::show(&message),
        _ => {}
    });
    worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    // A worker that fails outside Rust's panic hook (a trap, a script error) still reports.
    let query = format!("lab=bench&workload={workload}");
    let on_error = Closure::<dyn FnMut(web_sys::ErrorEvent)>::new(move |e: web_sys::ErrorEvent| {
        let message = fatal::worker_failed(&e.message(), &query);
        result.set(Some(Err(message.clone())));
        fatal::show(&message);
    });
    worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    on_error.forget();
}

/// `backend`: `cpu` (the training worker), `webgpu` or `auto` (the GPU worker; without WebGPU the
/// page says why and runs on the CPU).
/// `batch`: the link's `batch` (rows per mini-batch; absent: the workload's own).
#[component]
pub fn BenchPage(workload: String, seconds: f64, backend: String, workers: engine::lab::WorkerCount, batch: Option<String>) -> impl IntoView {
    let result = RwSignal::new(None::<Result<engine::lab::bench::BenchResult, String>>);
    let loading = RwSignal::new(None::<String>);
    let fallback = RwSignal::new(None::<String>);
    let batch = match batch.map(|b| b.trim().parse::<usize>().map_err(|_| b)).transpose() {
        Ok(b) => b,
        Err(bad) => {
            result.set(Some(Err(format!("batch=\"{}\" is not a number of rows (1 to 1024)", bad.chars().take(20).collect::<String>()))));
            None
        }
    };
    let run = Run { workload: workload.clone(), seconds, workers, batch };
    let on_cpu = {
        let run = run.clone();
        move |reason: String| {
            fallback.set(Some(format!("WebGPU is not available here ({reason}): the benchmark ran on the CPU instead.")));
            start_worker(CPU, run.clone(), result, loading, |_| {});
        }
    };
    match backend.as_str() {
        _ if result.get_untracked().is_some() => {}
        "webgpu" | "auto" => start_worker(GPU, run, result, loading, on_cpu),
        _ => start_worker(CPU, run, result, loading, |_| {}),
    }
    let json = move || match result.get() {
        Some(Ok(r)) => serde_json::json!({
            "workload": r.workload, "items_per_s": r.items_per_s, "ms_per_step": r.ms_per_step, "backend": r.backend, "steps": r.steps, "workers": r.workers,
            "fallback": fallback.get()
        })
        .to_string(),
        Some(Err(e)) => serde_json::json!({ "error": e }).to_string(),
        None => String::new(),
    };
    let summary = move || match result.get() {
        Some(Ok(r)) => format!(
            "{}{}: {:.0} items per second on {} worker{} ({:.4} ms per step, {} steps, {})",
            r.workload,
            batch.map(|b| format!(" in batches of {b}")).unwrap_or_default(),
            r.items_per_s,
            r.workers,
            if r.workers == 1 { "" } else { "s" },
            r.ms_per_step,
            r.steps,
            r.backend
        ),
        Some(Err(e)) => e,
        None => loading.get().unwrap_or_else(|| format!("Running {workload} in the training worker for {seconds} s…")),
    };
    view! {
        <div class="intro">
            <h1>"Benchmark"</h1>
            <p>"The training loop alone, in the same Web Worker the labs use: no snapshots, no drawing."</p>
            <p class="notice" id="bench-fallback" hidden=move || fallback.get().is_none()>{move || fallback.get()}</p>
            <p class="bench-summary" id="bench-summary">{summary}</p>
            <pre id="bench-results">{json}</pre>
        </div>
    }
    .into_any()
}
