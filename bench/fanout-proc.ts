/** What the fan-out benchmark reads of its processes and of the machine, from /proc (Linux). */
import { readFileSync } from 'node:fs';

/** Resident set of a process, in KiB. */
export function rssKb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB$/m);
  if (!line) throw new Error(`no VmRSS for process ${pid}`);
  return Number(line[1]);
}

/** CPU time a process used so far in user mode and in the kernel, in ms. */
export function cpuMs(pid: number): { user: number; system: number } {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  // utime and stime are fields 14 and 15 of stat, in clock ticks (100 per second on Linux).
  return { user: Number(fields[11]) * 10, system: Number(fields[12]) * 10 };
}

/** How long a process's main thread (its event loop) has waited for a CPU so far, in ms. */
export function runQueueMs(pid: number): number {
  // schedstat: time on a CPU, time runnable but waiting on a run queue (ns), timeslices.
  return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[1]) / 1e6;
}

/** CPU time all cores of the machine were busy so far, in ms (/proc/stat, 100 ticks per second). */
export function machineBusyMs(): number {
  const [, ...ticks] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = ticks as number[];
  return (user! + nice! + system! + irq! + softirq! + steal!) * 10;
}
