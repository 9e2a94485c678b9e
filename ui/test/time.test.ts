import { test } from 'node:test';
import assert from 'node:assert/strict';
import { autoStep, formatDuration, MAX_POINTS, parseDuration } from '../src/time';
import { alignMatrix, stackColumns } from '../src/series';

test('durations', () => {
  assert.equal(parseDuration('1h30m'), 5_400_000);
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('2w'), 14 * 86_400_000);
  assert.equal(parseDuration('1x'), null);
  assert.equal(parseDuration(''), null);
  assert.equal(formatDuration(5_400_000), '1h30m');
  assert.equal(formatDuration(14 * 86_400_000), '2w');
  assert.equal(formatDuration(10 * 86_400_000), '10d');
  assert.equal(formatDuration(1500), '1s500ms');
});

test('automatic step: about two pixels a point, nice values, point limit', () => {
  assert.equal(autoStep(3600_000, 1200), 10_000);
  assert.equal(autoStep(86_400_000, 1200), 300_000);
  assert.equal(autoStep(60_000, 1200), 1000);
  for (const range of [3600_000, 86_400_000, 30 * 86_400_000, 400 * 86_400_000]) {
    for (const w of [100, 1000, 100_000]) assert.ok(range / autoStep(range, w) <= MAX_POINTS);
  }
});

test('matrix alignment and stacking', () => {
  const cols = alignMatrix(
    [
      { metric: {}, values: [[10, '1'], [20, '2'], [40, 'NaN']] },
      { metric: {}, values: [[20, '5'], [30, '+Inf']] },
    ],
    10_000,
    40_000,
    10_000,
  );
  assert.deepEqual(cols.xs, [10, 20, 30, 40]);
  assert.deepEqual(cols.ys, [
    [1, 2, null, null],
    [null, 5, null, null],
  ]);
  assert.deepEqual(stackColumns(cols.ys, [true, true]), [
    [1, 2, null, null],
    [null, 7, null, null],
  ]);
  assert.deepEqual(stackColumns(cols.ys, [false, true])[1], [null, 5, null, null]);
});
