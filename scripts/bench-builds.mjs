// Two or more builds of the app, benchmarked in alternating rounds in the same minutes (this VM
// drifts by a third from minute to minute: only alternating rounds compare):
//   node scripts/bench-builds.mjs <workload> <seconds> <rounds> <dir>[:workers] <dir>[:workers] ...
// Each <dir> is a copy of a `trunk build --release` output (e.g. `cp -r dist /tmp/dist-a`, then
// change, rebuild and `cp -r dist /tmp/dist-b`); workers default to 1. Prints every round with
// the CPU time the host took meanwhile (scripts/steal.mjs), then each build's mean and, against
// the first, in how many rounds it was faster.
import fs from 'node:fs';
import { serveDist, launch, benchInPage } from '../tests/helpers.mjs';
import { withSteal, stealText } from './steal.mjs';

const [workload, seconds, rounds, ...specs] = process.argv.slice(2);
const usage = 'usage: node scripts/bench-builds.mjs <w1|w2|w2bn|w3|w4> <seconds> <rounds> <dir>[:workers] <dir>[:workers] ...';
if (!/^w[1-4]$|^w2bn$/.test(workload ?? '') || !(Number(seconds) > 0) || !(Number(rounds) >= 1) || specs.length < 2) {
  console.error(usage);
  process.exit(2);
}
const builds = specs.map((spec) => {
  const [dir, workers = '1'] = spec.split(':');
  if (!fs.existsSync(`${dir}/index.html`)) throw new Error(`${dir}: no index.html (a trunk build's folder?)`);
  if (!/^([1-9]|1[0-6])$/.test(workers)) throw new Error(`${spec}: workers must be 1–16`);
  return { spec, dir, workers: Number(workers), figures: [] };
});

const browser = await launch();
try {
  for (let r = 0; r < Number(rounds); r++) {
    const row = [];
    for (const b of builds) {
      const server = await serveDist(b.dir);
      try {
        const m = await withSteal(() => benchInPage(browser, server.url, workload, seconds, 'cpu', b.workers));
        b.figures.push(m.result.items_per_s);
        row.push(`${Math.round(m.result.items_per_s)} (${stealText(m.steal)})`);
      } finally {
        await server.close();
      }
    }
    console.log(`round ${r + 1}: ${row.join(' | ')}`);
  }
} finally {
  await browser.close();
}
const mean = (v) => v.reduce((a, b) => a + b, 0) / v.length;
console.log(`\n${workload}, ${seconds} s each, ${rounds} rounds (items/s):`);
for (const b of builds) {
  const wins = b.figures.filter((v, i) => v > builds[0].figures[i]).length;
  const vs = b === builds[0] ? '' : `, ${((mean(b.figures) / mean(builds[0].figures) - 1) * 100).toFixed(1)} % against the first, faster in ${wins} of ${b.figures.length}`;
  console.log(`  ${b.spec}: mean ${Math.round(mean(b.figures))}${vs}`);
}
