// Starts the app. A file of its own (not an inline script) so the Content-Security-Policy can
// forbid inline scripts; Trunk's script injection is off (Trunk.toml) and names carry no hash.
import init from './deeply-web.js';

document.getElementById('fatal-reload')?.addEventListener('click', () => location.reload());
await init({ module_or_path: './deeply-web_bg.wasm' });

// Offline after a first visit (www/sw.js). Not where there is no service worker (an insecure
// origin, a private window): the app works the same online.
navigator.serviceWorker?.register('./sw.js').catch((e) => console.warn('no offline copy:', e.message));
