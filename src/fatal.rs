//! The error panel. It is plain DOM (in index.html), not a Leptos view, so it still shows after a
//! panic has poisoned the wasm instance: the page never goes blank or freezes silently.

use wasm_bindgen::JsCast;

/// Shows the error panel with `message` (and logs it).
pub fn show(message: &str) {
    web_sys::console::error_1(&message.into());
    let Some(doc) = web_sys::window().and_then(|w| w.document()) else { return };
    if let Some(text) = doc.get_element_by_id("fatal-message") {
        // Keep the first (root-cause) message; later ones are usually its echoes.
        let before = text.text_content().unwrap_or_default();
        let all = if before.is_empty() { message.to_string() } else { format!("{before}\n\nthen: {message}") };
        text.set_text_content(Some(&all));
    }
    if let Some(panel) = doc.get_element_by_id("fatal").and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok()) {
        panel.set_hidden(false);
    }
}

/// The message for a worker that failed outside Rust's panic hook (its `onerror`): a wasm trap
/// — `unreachable` is what an allocation failure becomes — is explained as running out of memory,
/// with the link of the run that caused it.
pub fn worker_failed(message: &str, query: &str) -> String {
    if message.contains("unreachable") || message.to_lowercase().contains("memory") {
        format!("The training worker ran out of memory ({message}). The run that caused it: ?{query} — try a smaller batch or network.")
    } else {
        format!("The training worker failed: {message} (while running ?{query})")
    }
}

pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| show(&format!("The page hit a bug and stopped: {info}"))));
}

/// `window.deeplyDebug.panicUi()` and `.panicWorker()`: deliberate crashes, so the end-to-end
/// tests can prove that a crash shows this panel instead of a blank or frozen page.
pub fn install_debug_hooks() {
    use wasm_bindgen::prelude::*;
    let Some(window) = web_sys::window() else { return };
    let debug = js_sys::Object::new();
    let panic_ui = Closure::<dyn Fn()>::new(|| panic!("deliberate UI panic (deeplyDebug.panicUi)"));
    let _ = js_sys::Reflect::set(&debug, &"panicUi".into(), panic_ui.as_ref());
    panic_ui.forget();
    let _ = js_sys::Reflect::set(&window, &"deeplyDebug".into(), &debug);
}
