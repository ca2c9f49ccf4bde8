import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { RateLimitedProblems } from '../../agent/telemetry/problems.ts';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'debug' }, new Writable({ write: (chunk, _enc, done) => done(void lines.push(JSON.parse(String(chunk)))) }));
  return { log, lines };
}

test('every problem is counted; the log gets the first at once, then one line per interval with what it left out', () => {
  const counts = new Map<string, number>();
  const counters = { add: (name: string, n = 1) => void counts.set(name, (counts.get(name) ?? 0) + n) };
  const { log, lines } = capture();
  let now = 1_000;
  const problems = new RateLimitedProblems(counters, log, { intervalMs: 10_000, now: () => now });
  for (let i = 0; i < 50; i++) problems.report('bad_frame', 'bad frame', { port: '/dev/ttyS0' });
  assert.equal(counts.get('bad_frame'), 50);
  assert.equal(lines.length, 1);
  assert.equal(lines[0]?.kind, 'bad_frame');
  assert.equal(lines[0]?.suppressed, undefined);
  now += 10_000;
  problems.report('bad_frame', 'bad frame');
  assert.equal(lines.length, 2);
  assert.equal(lines[1]?.suppressed, 49);
  assert.equal(counts.get('bad_frame'), 51);
});

test('kinds and keys are limited apart, at the level asked for', () => {
  const { log, lines } = capture();
  const problems = new RateLimitedProblems({ add() {} }, log, { now: () => 0 });
  problems.report('missing_file', 'missing', { path: 'a' }, { key: 'a' });
  problems.report('missing_file', 'missing', { path: 'b' }, { key: 'b' });
  problems.report('missing_file', 'missing', { path: 'a' }, { key: 'a' });
  problems.report('read_error', 'cannot read', {}, { level: 'error' });
  assert.deepEqual(
    lines.map((l) => [l.kind, l.path, l.level]),
    [
      ['missing_file', 'a', 40],
      ['missing_file', 'b', 40],
      ['read_error', undefined, 50],
    ],
  );
});
