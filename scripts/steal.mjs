// The share of the machine's CPU time its hypervisor took (Linux's "steal" in /proc/stat) over
// a measurement: on a shared host a vCPU that is not running cannot answer a lockstep, so the
// several-worker figures mean little while it is high. Null where /proc/stat is missing.
import fs from 'node:fs';

/** The summed CPU times now (jiffies): all and stolen, or null. */
export function cpuTimes() {
  try {
    const line = fs.readFileSync('/proc/stat', 'utf8').split('\n').find((l) => l.startsWith('cpu '));
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest times are within user).
    return { all: v.slice(0, 8).reduce((a, b) => a + b, 0), steal: v[7] ?? 0 };
  } catch {
    return null;
  }
}

/** Runs `f`, returning its result and the percentage of CPU time stolen meanwhile. */
export async function withSteal(f) {
  const a = cpuTimes();
  const result = await f();
  const b = cpuTimes();
  const steal = a && b && b.all > a.all ? (100 * (b.steal - a.steal)) / (b.all - a.all) : null;
  return { result, steal };
}

/** "12 %" or "?" */
export const stealText = (s) => (s == null ? '?' : `${s.toFixed(0)} %`);
