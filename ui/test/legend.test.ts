import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatLegend, regexEscape, seriesName, substituteVariables } from '../src/legend';
import { formatValue, thresholdColor } from '../src/units';

test('series names print like Prometheus', () => {
  assert.equal(seriesName({ __name__: 'up', job: 'a', instance: 'x:1' }), 'up{instance="x:1", job="a"}');
  assert.equal(seriesName({ job: 'a"b' }), '{job="a\\"b"}');
  assert.equal(seriesName({ __name__: 'up' }), 'up');
  assert.equal(seriesName({}), '{}');
});

test('legend templates', () => {
  const l = { __name__: 'http_requests_total', handler: '/api', code: '200' };
  assert.equal(formatLegend('{{handler}} {{ code }}', l), '/api 200');
  assert.equal(formatLegend('{{missing}}-{{code}}', l), '-200');
  assert.equal(formatLegend('', l), 'http_requests_total{code="200", handler="/api"}');
  assert.equal(formatLegend(undefined, { a: '1' }), '{a="1"}');
  assert.equal(formatLegend('{{__name__}}', l), 'http_requests_total');
});

test('variables', () => {
  assert.equal(substituteVariables('up{job="$job", i=~"${inst}"} $none', { job: 'api', inst: '.*' }), 'up{job="api", i=~".*"} $none');
  assert.equal(regexEscape('a.b"c'), 'a\\\\.b\\"c');
});

test('units', () => {
  assert.equal(formatValue(1234567, 'short'), '1.23M');
  assert.equal(formatValue(0.5, 'percentunit'), '50%');
  assert.equal(formatValue(1536, 'bytes'), '1.5 KiB');
  assert.equal(formatValue(0.0123, 'seconds'), '12.3ms');
  assert.equal(formatValue(90, 'seconds'), '1.5m');
  assert.equal(formatValue(12, 'reqps'), '12 req/s');
  assert.equal(formatValue(NaN), 'NaN');
  assert.equal(formatValue(-Infinity), '-Inf');
  assert.equal(formatValue(null), '–');
  const th = [{ value: 80, color: 'red' }, { value: 0, color: 'green' }, { value: 50, color: 'orange' }];
  assert.equal(thresholdColor(10, th), 'green');
  assert.equal(thresholdColor(50, th), 'orange');
  assert.equal(thresholdColor(99, th), 'red');
  assert.equal(thresholdColor(-5, th), 'green');
  assert.equal(thresholdColor(null, th, 'x'), 'x');
});
