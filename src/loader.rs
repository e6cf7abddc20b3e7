//! Fetches a lab's data files from the app's own `data/` folder (shipped with the app, never
//! downloaded from elsewhere), streaming them so the page can show a progress bar.

use engine::data::images::{ImagePair, ImageSet};
use engine::data::names::{TextFile, TextSet};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{DedicatedWorkerGlobalScope, ReadableStreamDefaultReader, Response};

/// Bytes between two progress reports.
const REPORT_EVERY: f64 = 512.0 * 1024.0;
/// The largest data file read (the biggest shipped one is ~26 MB): the stream is cut there, and
/// Content-Length only sizes the progress bar (capped), never the allocation.
const MAX_FILE_BYTES: usize = 48 << 20;

/// Reads one file, calling `progress(bytes_so_far_of_this_file, content_length)` as it arrives.
async fn fetch_bytes(scope: &DedicatedWorkerGlobalScope, url: &str, progress: &mut dyn FnMut(f64, f64)) -> Result<Vec<u8>, String> {
    let response: Response =
        JsFuture::from(scope.fetch_with_str(url)).await.map_err(|e| format!("{url}: {e:?}"))?.dyn_into().map_err(|_| format!("{url}: not a response"))?;
    if !response.ok() {
        return Err(format!("{url}: HTTP {}", response.status()));
    }
    let total = response.headers().get("content-length").ok().flatten().and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let body = response.body().ok_or_else(|| format!("{url}: empty body"))?;
    let reader: ReadableStreamDefaultReader = body.get_reader().dyn_into().map_err(|_| "stream reader".to_string())?;
    let mut bytes = Vec::with_capacity((total as usize).min(MAX_FILE_BYTES));
    let mut reported = 0.0;
    loop {
        let chunk = JsFuture::from(reader.read()).await.map_err(|e| format!("{url}: {e:?}"))?;
        let done = js_sys::Reflect::get(&chunk, &"done".into()).map(|d| d.is_truthy()).unwrap_or(true);
        if done {
            break;
        }
        let value = js_sys::Reflect::get(&chunk, &"value".into()).map_err(|_| "stream value".to_string())?;
        bytes.extend_from_slice(&js_sys::Uint8Array::new(&value).to_vec());
        if bytes.len() > MAX_FILE_BYTES {
            let _ = reader.cancel();
            return Err(format!("{url}: larger than {} MB", MAX_FILE_BYTES >> 20));
        }
        if bytes.len() as f64 - reported >= REPORT_EVERY {
            reported = bytes.len() as f64;
            progress(reported, total);
        }
    }
    progress(bytes.len() as f64, total.max(bytes.len() as f64));
    keep_offline(scope, url, &bytes).await;
    Ok(bytes)
}

/// The cache the service worker (`www/sw.js`) answers data requests from when offline.
const DATA_CACHE: &str = "deeply-data-v1";

/// Keeps a copy of a fetched data file for offline visits. Done here, not only in the service
/// worker, because a first visit's worker may fetch before the service worker controls the
/// page. Best effort: no cache (a private window, an insecure origin) just means no offline copy.
async fn keep_offline(scope: &DedicatedWorkerGlobalScope, url: &str, bytes: &[u8]) {
    let Ok(caches) = scope.caches() else { return };
    let Ok(cache) = JsFuture::from(caches.open(DATA_CACHE)).await else { return };
    let cache: web_sys::Cache = cache.unchecked_into();
    let mut copy = bytes.to_vec();
    let Ok(response) = Response::new_with_opt_u8_array(Some(&mut copy)) else { return };
    let _ = JsFuture::from(cache.put_with_str(url, &response)).await;
}

/// Fetches and parses the four files of an image dataset; `progress(loaded, total)` counts
/// bytes over all four (the total grows as each file's length becomes known).
pub async fn fetch_images(scope: &DedicatedWorkerGlobalScope, set: ImageSet, progress: &mut dyn FnMut(f64, f64)) -> Result<ImagePair, String> {
    let mut files: Vec<Vec<u8>> = Vec::new();
    let mut done_bytes = 0.0;
    // Known sizes of the shipped files give the bar a total from the start.
    let expected: f64 = match set {
        ImageSet::Mnist => 11_369_320.0,
        ImageSet::Fashion => 30_878_551.0,
    };
    for name in set.files() {
        let url = format!("data/{}/{}", set.dir(), name);
        let base = done_bytes;
        let bytes = fetch_bytes(scope, &url, &mut |loaded, _| progress(base + loaded, expected.max(base + loaded))).await?;
        done_bytes += bytes.len() as f64;
        files.push(bytes);
    }
    ImagePair::parse(set, [&files[0], &files[1], &files[2], &files[3]])
}

/// Fetches and checks a text dataset; `progress(loaded, total)` counts its bytes.
pub async fn fetch_text(scope: &DedicatedWorkerGlobalScope, set: TextSet, progress: &mut dyn FnMut(f64, f64)) -> Result<TextFile, String> {
    let expected = set.bytes();
    let bytes = fetch_bytes(scope, &format!("data/{}", set.path()), &mut |loaded, _| progress(loaded, expected.max(loaded))).await?;
    TextFile::parse(set, &bytes)
}
