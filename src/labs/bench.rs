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

/// Starts a worker (`url`: CPU or GPU), kept in `kept` for the runs asked later, that runs `run`
/// once it is ready; its answers go to `result`, its loading progress to `loading`, and a missing
/// WebGPU to `on_unavailable`.
fn start_worker(
    url: &str,
    run: Run,
    result: RwSignal<Option<Result<engine::lab::bench::BenchResult, String>>>,
    loading: RwSignal<Option<String>>,
    kept: StoredValue<Option<web_sys::Worker>, LocalStorage>,
    on_unavailable: impl Fn(String) + 'static,
) {
    let Run { workload, seconds, workers, batch } = run;
    let worker = match crate::client::new_worker(url == GPU) {
        Ok(w) => w,
        Err(e) => return result.set(Some(Err(format!("could not start {url}: {e:?}")))),
    };
    kept.set_value(Some(worker.clone()));
    let w2 = worker.clone();
    let name = workload.clone();
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| match decode::<Message>(event.data()) {
        Ok(Message::Ready) => {
            let _ = w2.post_message(&encode(&Command::Bench { workload: name.clone(), seconds, workers, batch }));
        }
        Ok(Message::BenchDone { result: r }) => result.set(Some(r)),
        Ok(Message::Loading { what, loaded, total }) => {
            // Once loaded, the page says what runs (a warm-up of several seconds, then the timing).
            let done = total > 0.0 && loaded >= total;
            loading.set((!done).then(|| format!("Loading {what}: {:.1} of {:.1} MB…", loaded / 1e6, total / 1e6)));
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
///
/// After the link's run, buttons run the workload again on 1 to 4 workers in the same worker, and
/// a table lists every run with its speed against the one-worker run: the scaling, measured on
/// this machine. (Only on request: a script's runs must not find the CPU busy with another.)
#[component]
pub fn BenchPage(workload: String, seconds: f64, backend: String, workers: engine::lab::WorkerCount, batch: Option<String>) -> impl IntoView {
    let result = RwSignal::new(None::<Result<engine::lab::bench::BenchResult, String>>);
    let loading = RwSignal::new(None::<String>);
    let fallback = RwSignal::new(None::<String>);
    let kept = StoredValue::new_local(None::<web_sys::Worker>);
    // Every finished run, in order, with the count it asked for.
    let runs = RwSignal::new(Vec::<(usize, engine::lab::bench::BenchResult)>::new());
    let asked = RwSignal::new(workers.resolve(hardware_concurrency()));
    let busy = RwSignal::new(true);
    let known = engine::lab::bench::Workload::parse(&workload);
    let batch = match batch.map(|b| b.trim().parse::<usize>().map_err(|_| b)).transpose() {
        Ok(b) => b,
        Err(bad) => {
            result.set(Some(Err(format!("batch=\"{}\" is not a number of rows (1 to 1024)", bad.chars().take(20).collect::<String>()))));
            None
        }
    };
    Effect::new(move |_| {
        if let Some(r) = result.get() {
            busy.set(false);
            if let Ok(r) = r {
                runs.update(|v| v.push((asked.get_untracked(), r)));
            }
        }
    });
    let run = Run { workload: workload.clone(), seconds, workers, batch };
    let on_cpu = {
        let run = run.clone();
        move |reason: String| {
            fallback.set(Some(format!("WebGPU is not available here ({reason}): the benchmark ran on the CPU instead.")));
            start_worker(CPU, run.clone(), result, loading, kept, |_| {});
        }
    };
    match backend.as_str() {
        _ if result.get_untracked().is_some() => busy.set(false),
        "webgpu" | "auto" => start_worker(GPU, run, result, loading, kept, on_cpu),
        _ => start_worker(CPU, run, result, loading, kept, |_| {}),
    }
    let again = {
        let workload = workload.clone();
        move |n: usize| {
            let Some(worker) = kept.get_value() else { return };
            if busy.get_untracked() {
                return;
            }
            busy.set(true);
            asked.set(n);
            result.set(None);
            let command = Command::Bench { workload: workload.clone(), seconds, workers: engine::lab::WorkerCount::Fixed(n), batch };
            if worker.post_message(&encode(&command)).is_err() {
                busy.set(false);
            }
        }
    };
    let json = move || match result.get() {
        Some(Ok(r)) => serde_json::json!({
            "workload": r.workload, "items_per_s": r.items_per_s, "ms_per_step": r.ms_per_step, "backend": r.backend, "steps": r.steps, "workers": r.workers,
            "fallback": fallback.get()
        })
        .to_string(),
        Some(Err(e)) => serde_json::json!({ "error": e }).to_string(),
        None => String::new(),
    };
    let item = known.map_or("items", |w| w.item());
    let summary = {
        let workload = workload.clone();
        move || match result.get() {
            Some(Ok(r)) => format!(
                "{}{}: {} {item} per second on {} worker{} ({:.4} ms per step, {} steps, {})",
                r.workload,
                batch.map(|b| format!(" in batches of {b}")).unwrap_or_default(),
                thousands(r.items_per_s),
                r.workers,
                if r.workers == 1 { "" } else { "s" },
                r.ms_per_step,
                r.steps,
                r.backend
            ),
            Some(Err(e)) => e,
            None if busy.get() && !runs.with(|r| r.is_empty()) => {
                format!("Running {workload} on {} worker{}…", asked.get(), if asked.get() == 1 { "" } else { "s" })
            }
            None => loading
                .get()
                .unwrap_or_else(|| format!("Running {workload} in the training worker: a warm-up until its speed settles, then {seconds} s timed…")),
        }
    };
    let rows = move || {
        runs.with(|runs| {
            let one = runs.iter().find(|(_, r)| r.workers == 1).map(|(_, r)| r.items_per_s);
            runs.iter()
                .map(|(n, r)| {
                    let vs = one.filter(|o| *o > 0.0).map_or_else(|| "–".to_string(), |o| format!("{:.2}×", r.items_per_s / o));
                    view! {
                        <tr>
                            <td>{*n}</td>
                            <td>{r.workers}</td>
                            <td>{thousands(r.items_per_s)}</td>
                            <td>{format!("{:.3}", r.ms_per_step)}</td>
                            <td>{vs}</td>
                            <td>{r.backend.clone()}</td>
                        </tr>
                    }
                })
                .collect_view()
        })
    };
    let buttons = {
        let again = again.clone();
        (1..=4usize)
            .map(|n| {
                let again = again.clone();
                view! {
                    <button class="bench-again" disabled=move || busy.get() || kept.with_value(|k| k.is_none()) on:click=move |_| again(n)>
                        {format!("{n} worker{}", if n == 1 { "" } else { "s" })}
                    </button>
                }
            })
            .collect_view()
    };
    let others = engine::lab::bench::WORKLOADS.split(", ").map(|w| view! { <a href=format!("?lab=bench&workload={w}")>{w}</a>" · " }).collect_view();
    let title = format!("Benchmark: {workload}");
    let cli = format!("deeply bench {workload} --threads N");
    view! {
        <div class="intro">
            <h1>{title}</h1>
            <p>"The training loop alone, in the same Web Worker the labs use: no snapshots, no drawing. "{known.map(|w| w.describe())}</p>
            <p class="notice" id="bench-fallback" hidden=move || fallback.get().is_none()>{move || fallback.get()}</p>
            <p class="bench-summary" id="bench-summary">{summary}</p>
            <div class="bench-scaling" hidden=move || runs.with(|r| r.is_empty())>
                <div class="table-scroll"><table class="confusion" id="bench-runs">
                    <caption>{format!("Runs on this machine ({seconds} s each; {item} per second)")}</caption>
                    <thead><tr><th>"workers asked"</th><th>"trained on"</th><th>{format!("{item}/s")}</th><th>"ms per step"</th><th>"vs 1 worker"</th><th>"backend"</th></tr></thead>
                    <tbody>{rows}</tbody>
                </table></div>
                <p class="small">"Run again on "{buttons}<span class="muted">{format!(" · this machine has {} logical cores; {}; natively: ", hardware_concurrency(), known.map_or("", splits))}<code>{cli}</code></span></p>
            </div>
            <p class="small muted">"Workloads: "{others}<a href="./">"the labs"</a></p>
            <pre id="bench-results">{json}</pre>
        </div>
    }
    .into_any()
}

/// `12345.6` as `12,346`.
fn thousands(v: f64) -> String {
    engine::lab::workers::thousands(v.max(0.0).round() as u64)
}

/// How a workload's batches split over workers (see `engine::parallel`).
fn splits(w: engine::lab::bench::Workload) -> &'static str {
    use engine::lab::bench::Workload;
    match w {
        Workload::W2 | Workload::W3 => "a batch of 64 splits into 4 shards of 16 rows, at most one worker each",
        Workload::W2bn => "batch norm needs the whole mini-batch, so it trains on one worker",
        Workload::W1 => "this network is small: one worker trains it fastest",
        Workload::W4 => "a batch of 32 sequences is too small to split (from 64 it splits in shards of 32)",
    }
}

/// Logical cores as the browser reports them (at least 1).
fn hardware_concurrency() -> usize {
    web_sys::window().map(|w| w.navigator().hardware_concurrency() as usize).unwrap_or(1).max(1)
}
