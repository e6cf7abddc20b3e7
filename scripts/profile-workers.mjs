// Where each training worker's time goes during a benchmark in Chromium, by function: Linux
// `perf` samples the busiest worker threads while `?lab=bench&workload=<w>&workers=<n>` runs, and
// V8's jitdump (`--perf-prof`) names the compiled wasm. For Rust names, profile a build without
// wasm-opt (it drops the name section): `data-wasm-opt="0"` in index.html, `trunk build --release`;
// with the shipped build the functions show as wasm-function[N].
//
//   node scripts/profile-workers.mjs [workload=w2] [workers=2] [seconds=3] [functions=14]
//
// Prints each worker thread's busy share of the sampled time and its top functions. A worker
// that is busy all the time while the other is not is the one the step waits for. V8 may inline
// a function into its callers in one worker and not in another, so compare kinds of work rather
// than single names. Needs `perf` (linux-perf) and permission to sample (root, or
// kernel.perf_event_paranoid ≤ 1).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { chromium } from 'playwright-core';
import { serveDist, benchInPage } from '../tests/helpers.mjs';

const [workload = 'w2', workersArg = '2', secondsArg = '3', linesArg = '14'] = process.argv.slice(2);
const workers = Number(workersArg);
const seconds = Number(secondsArg);
const lines = Math.max(1, Math.min(200, Number(linesArg) || 14));
if (!(workers >= 1 && workers <= 16) || !(seconds > 0 && seconds <= 60)) {
  console.error('usage: node scripts/profile-workers.mjs [workload] [workers 1-16] [seconds 1-60] [functions]');
  process.exit(2);
}
const HZ = 4000;

/** CPU ticks of every DedicatedWorker thread of Chromium's renderers. */
function workerThreads() {
  const out = [];
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let cmd = '';
    try { cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8'); } catch { continue; }
    if (!cmd.includes('--type=renderer')) continue;
    let tids = [];
    try { tids = fs.readdirSync(`/proc/${pid}/task`); } catch { continue; }
    for (const tid of tids) {
      try {
        const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
        if (!stat.includes('(DedicatedWorker')) continue;
        const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        out.push({ tid, ticks: Number(f[11]) + Number(f[12]) });
      } catch { /* the thread ended */ }
    }
  }
  return out;
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'deeply-profile-'));
// Chromium writes its jitdump files into its working directory.
process.chdir(work);
const server = await serveDist(process.env.DEEPLY_DIST || undefined);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium', chromiumSandbox: false, headless: true,
  args: ['--no-sandbox', '--disable-background-networking', '--js-flags=--perf-prof --no-write-protect-code-memory'],
});
try {
  await benchInPage(browser, server.url, workload, 2, 'cpu', workers); // compiles and warms
  // Long enough to cover loading, the helpers' start, the sampling and the recording.
  const run = benchInPage(browser, server.url, workload, seconds + 14, 'cpu', workers);
  await new Promise((r) => setTimeout(r, 9000));
  const before = workerThreads();
  await new Promise((r) => setTimeout(r, 1000));
  const busy = workerThreads()
    .map((t) => ({ ...t, ticks: t.ticks - (before.find((b) => b.tid === t.tid)?.ticks ?? t.ticks) }))
    .sort((a, b) => b.ticks - a.ticks).slice(0, workers);
  const data = path.join(work, 'perf.data');
  execFileSync('perf', ['record', '-q', '-e', 'cpu-clock', '-F', String(HZ), '-k', '1', '-t', busy.map((t) => t.tid).join(','),
    '-o', data, '--', 'sleep', String(seconds)], { stdio: 'ignore' });
  const result = await run;
  execFileSync('perf', ['inject', '--jit', '-i', data, '-o', `${data}.jit`], { stdio: 'ignore' });
  console.log(`${workload} on ${workers} worker(s) in Chromium: ${Math.round(result.items_per_s)} items/s over the whole run`);
  const counts = execFileSync('perf', ['script', '-i', `${data}.jit`, '-F', 'tid'], { encoding: 'utf8', maxBuffer: 1 << 28 })
    .split('\n').map((l) => l.trim()).filter(Boolean).reduce((m, t) => m.set(t, (m.get(t) ?? 0) + 1), new Map());
  for (const { tid } of busy) {
    const samples = counts.get(tid) ?? 0;
    console.log(`\nthread ${tid}: busy ${(100 * samples / (HZ * seconds)).toFixed(0)} % of ${seconds} s`);
    const report = execFileSync('perf', ['report', '-i', `${data}.jit`, '--stdio', '--tid', tid, '--percentage', 'relative', '--sort', 'sym'],
      { encoding: 'utf8', maxBuffer: 1 << 28, stdio: ['ignore', 'pipe', 'ignore'] });
    report.split('\n').filter((l) => l.trim() && !l.startsWith('#')).slice(0, lines)
      .forEach((l) => console.log('  ' + l.trim().replace(/\s+\[\.\]\s+/, '  ').replace(' JS:', ' ')));
  }
} finally {
  await browser.close();
  await server.close();
  fs.rmSync(work, { recursive: true, force: true });
}
