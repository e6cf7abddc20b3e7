//! The error panel. It is plain DOM (in index.html), not a Leptos view, so it still shows after a
//! panic has poisoned the wasm instance: the page never goes blank or freezes silently.

use wasm_bindgen::JsCast;

/// Shows the error panel with `message` (and logs it).
pub fn show(message: &str) {
    web_sys::console::error_1(&message.into());
    let Some(doc) = web_sys::window().and_then(|w| w.document()) else { return };
    if let Some(text) = doc.get_element_by_id("fatal-message") {
        text.set_text_content(Some(message));
    }
    if let Some(panel) = doc.get_element_by_id("fatal").and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok()) {
        panel.set_hidden(false);
    }
}

pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| show(&format!("The page hit a bug and stopped: {info}"))));
}
