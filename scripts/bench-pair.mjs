// How much two cores can give at most, beside what two workers get, in the same minutes:
//   node scripts/bench-pair.mjs <workload> [seconds] [rounds] [native|browser|both] [batch]
// (after `trunk build --release`; the native side builds `deeply` with the ci profile). The last
// column is the share of CPU time the hypervisor took meanwhile (see scripts/steal.mjs).
// Each round runs, natively and in headless Chromium: one worker alone; two independent
// one-worker runs at once (two processes, two pages: nothing shared, nothing sent — their sum is
// the most two workers could reach on this machine, whatever the protocol); then one run on two
// workers (`--threads 2`, `workers=2`). Rounds alternate so a drifting VM shows as spread.
// Each round ends with 1 and 2 side by side in one run (`--threads 1,2`; the page's `workers=1,2`).
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { serveDist, launch, benchInPage, ROOT } from '../tests/helpers.mjs';
import { withSteal, stealText } from './steal.mjs';

const [workload = 'w2', seconds = '4', rounds = '3', where = 'both', batch = null] = process.argv.slice(2);
if (!/^w[1-4]$|^w2bn$/.test(workload)) throw new Error(`workload "${workload}": expected w1, w2, w2bn, w3 or w4`);
const run = promisify(execFile);
const round = (v) => Math.round(v);

async function native() {
  execFileSync('cargo', ['build', '-q', '--profile', 'ci', '-p', 'deeply-cli', '--bin', 'deeply'], { cwd: ROOT, stdio: 'inherit' });
  const bin = `${ROOT}/target/ci/deeply`;
  const one = async (threads) => JSON.parse((await run(bin, ['bench', workload, '--threads', String(threads), '--seconds', seconds, '--json', ...(batch ? ['--batch', batch] : [])])).stdout).items_per_s;
  // Natively also the two counts side by side in one run (chunks of ~50 ms in turn: see
  // `deeply bench --threads 1,2`), which meets the VM's slow windows alike for both.
  const sideBySide = async () => {
    const r = JSON.parse((await run(bin, ['bench', workload, '--threads', '1,2', '--seconds', seconds, '--json', ...(batch ? ['--batch', batch] : [])])).stdout);
    return r.map((x) => x.items_per_s);
  };
  const rows = [];
  for (let r = 0; r < Number(rounds); r++) {
    rows.push({ ...(await measured(one)), side: await sideBySide() });
  }
  return rows;
}

/** One round: one worker alone, two alone at once, one run on two workers; and the time stolen. */
async function measured(one) {
  const a = await withSteal(() => one(1));
  const p = await withSteal(() => Promise.all([one(1), one(1)]));
  const t = await withSteal(() => one(2));
  return { alone: a.result, pair: p.result, two: t.result, steal: [a.steal, p.steal, t.steal] };
}

async function browser() {
  const server = await serveDist();
  const b = await launch();
  try {
    const one = async (workers) => (await benchInPage(b, server.url, workload, seconds, 'cpu', workers, batch)).items_per_s;
    // The bench page's `workers=1,2`: both counts side by side in one page, as natively.
    const sideBySide = async () => (await benchInPage(b, server.url, workload, seconds, 'cpu', '1,2', batch)).map((r) => r.items_per_s);
    const rows = [];
    for (let r = 0; r < Number(rounds); r++) {
      rows.push({ ...(await measured(one)), side: await sideBySide() });
    }
    return rows;
  } finally {
    await b.close();
    await server.close();
  }
}

function report(name, rows) {
  console.log(`\n${workload}${batch ? ` (batches of ${batch})` : ''} ${name} (examples/s; ${seconds} s each)`);
  console.log('| one alone | two alone at once (sum) | ceiling | two workers | speed-up | share of the ceiling | CPU time stolen (alone / at once / two workers) |');
  console.log('|---|---|---|---|---|---|---|');
  for (const { alone, pair, two, steal } of rows) {
    const sum = pair[0] + pair[1];
    console.log(`| ${round(alone)} | ${round(pair[0])} + ${round(pair[1])} = ${round(sum)} | ${(sum / alone).toFixed(2)}× | ${round(two)} | ${(two / alone).toFixed(2)}× | ${(100 * two / sum).toFixed(0)} % | ${steal.map(stealText).join(' / ')} |`);
  }
  const sides = rows.filter((r) => r.side).map(({ side: [one, two] }) => `${round(one)} → ${round(two)} (${(two / one).toFixed(2)}×)`);
  if (sides.length) console.log(`\nside by side in one run (1 and 2 workers, ~50 ms chunks in turn): ${sides.join(' · ')}`);
}

if (where !== 'browser') report('natively (processes; --threads 2)', await native());
if (where !== 'native') report('in Chromium (pages; workers=2)', await browser());
