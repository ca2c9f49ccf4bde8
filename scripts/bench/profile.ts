import { readFileSync } from 'node:fs';
import { relative } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileEntry {
  name: string;
  where: string;
  selfMs: number;
  share: number;
  /** Self time of this function split by its caller (largest first): who is paying for it. */
  callers: { name: string; selfMs: number }[];
}

export interface ProfileSummary {
  totalMs: number;
  top: ProfileEntry[];
  /** Self time grouped by where the code lives (the agent, a dependency, Node internals, native/idle). */
  byArea: { area: string; selfMs: number; share: number }[];
}

function area(url: string, root: string): string {
  if (url === '') return '(native, GC, idle)';
  if (url.startsWith('node:')) return 'node internals';
  const path = url.startsWith('file://') ? new URL(url).pathname : url;
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path);
  if (m) return `dependency ${m[1]}`;
  return relative(root, path).split('/').slice(0, 2).join('/');
}

/** Self time per function (and per area) of a `--cpu-prof` profile, largest first. */
export function summariseProfile(file: string, root: string, topN = 15): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, ProfileNode>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n);
  const label = (n: ProfileNode | undefined) => {
    if (!n) return '(root)';
    const { functionName, url, lineNumber } = n.callFrame;
    const file = url.startsWith('file://') ? relative(root, new URL(url).pathname) : url;
    return `${functionName || '(anonymous)'}${file ? ` ${file}:${lineNumber + 1}` : ''}`;
  };
  const callers = new Map<string, Map<string, number>>();
  const self = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const byFunction = new Map<string, ProfileEntry>();
  const byArea = new Map<string, number>();
  let total = 0;
  for (const [id, us] of self) {
    const node = byId.get(id);
    if (!node) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const name = functionName || '(anonymous)';
    const where = url ? `${url.startsWith('file://') ? relative(root, new URL(url).pathname) : url}:${lineNumber + 1}` : '';
    const key = `${name} ${where}`;
    const entry = byFunction.get(key) ?? { name, where, selfMs: 0, share: 0, callers: [] };
    entry.selfMs += us / 1000;
    byFunction.set(key, entry);
    // The caller that is not a thin wrapper of the same library: walk up past frames of the same file.
    let up = parent.get(id);
    while (up && up.callFrame.url === url && url !== '') up = parent.get(up.id);
    const perCaller = callers.get(key) ?? new Map<string, number>();
    perCaller.set(label(up), (perCaller.get(label(up)) ?? 0) + us / 1000);
    callers.set(key, perCaller);
    const a = area(url, root);
    byArea.set(a, (byArea.get(a) ?? 0) + us / 1000);
    total += us / 1000;
  }
  const top = [...byFunction.values()].sort((a, b) => b.selfMs - a.selfMs).slice(0, topN);
  for (const e of top) {
    e.share = e.selfMs / total;
    e.callers = [...(callers.get(`${e.name} ${e.where}`) ?? new Map<string, number>()).entries()]
      .map(([name, selfMs]) => ({ name, selfMs }))
      .sort((a, b) => b.selfMs - a.selfMs)
      .slice(0, 4);
  }
  return {
    totalMs: total,
    top,
    byArea: [...byArea.entries()].map(([a, ms]) => ({ area: a, selfMs: ms, share: ms / total })).sort((a, b) => b.selfMs - a.selfMs),
  };
}
