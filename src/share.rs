//! The page URL ⇄ config. Parsing and encoding live in the engine (`engine::lab::link`, serde);
//! this file only reads and writes the browser's location.

use wasm_bindgen::JsValue;

/// The page's full URL.
pub fn current_href() -> String {
    web_sys::window().and_then(|w| w.location().href().ok()).unwrap_or_default()
}

/// The shareable URL for a query: this page's origin and path, then `?query`.
pub fn link_for(query: &str) -> String {
    let Some(loc) = web_sys::window().map(|w| w.location()) else { return format!("?{query}") };
    format!("{}{}?{}", loc.origin().unwrap_or_default(), loc.pathname().unwrap_or_default(), query)
}

/// Puts `query` into the address bar without reloading or adding a history entry.
pub fn replace_query(query: &str) {
    if let Some(h) = web_sys::window().and_then(|w| w.history().ok()) {
        let _ = h.replace_state_with_url(&JsValue::NULL, "", Some(&format!("?{query}")));
    }
}

/// Copies text to the clipboard (best effort: the link is also shown in a text field).
pub fn copy_to_clipboard(text: &str) {
    if let Some(w) = web_sys::window() {
        let _ = w.navigator().clipboard().write_text(text);
    }
}

/// Offers `text` as a file named `name` (a Blob behind a clicked link).
pub fn download(name: &str, text: &str, mime: &str) {
    use wasm_bindgen::JsCast;
    let parts = js_sys::Array::of1(&text.into());
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
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

/// Reads the file chosen in an `<input type="file">`, then hands its text to `then`; a file over
/// `max_bytes` is refused with a notice (under `key`) before it is read.
pub fn read_file(state: crate::client::LabState, key: &'static str, ev: &leptos::ev::Event, max_bytes: f64, then: impl FnOnce(String) + 'static) {
    use leptos::prelude::*;
    use wasm_bindgen::JsCast;
    let Some(input) = ev.target().and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok()) else {
        return;
    };
    let Some(file) = input.files().and_then(|f| f.get(0)) else {
        return;
    };
    input.set_value("");
    if file.size() > max_bytes {
        let message = format!("\"{}\" is {:.1} MB: files up to {} MB are read", file.name(), file.size() / 1048576.0, max_bytes / 1048576.0);
        state.notices.update(|n| n.push(engine::lab::Notice { key: key.into(), message }));
        return;
    }
    leptos::task::spawn_local(async move {
        if let Ok(text) = wasm_bindgen_futures::JsFuture::from(file.text()).await {
            then(text.as_string().unwrap_or_default());
        }
    });
}
