// The CPU training worker: the page's own wasm (one download, cached), started in a module worker;
// its `main` sees no window and runs the trainer (src/main.rs, src/worker.rs).
import init from './deeply-web.js';

await init({ module_or_path: './deeply-web_bg.wasm' });
