import { test } from 'node:test';
import assert from 'node:assert/strict';
import { completionContext, errorOffset, rankCandidates } from '../src/promql';
import { checkSyntax } from '../src/syntax';

const at = (s: string) => completionContext(s.replace('|', ''), s.indexOf('|'));

test('what to complete at the cursor', () => {
  assert.deepEqual(at('rate(http_req|'), { kind: 'metric', prefix: 'http_req', from: 5 });
  assert.deepEqual(at('up{jo|'), { kind: 'label', metric: 'up', prefix: 'jo', from: 3 });
  assert.deepEqual(at('up{job="a", |'), { kind: 'label', metric: 'up', prefix: '', from: 12 });
  assert.deepEqual(at('up{job="ap|'), { kind: 'value', metric: 'up', label: 'job', prefix: 'ap', from: 8, quote: false });
  assert.deepEqual(at('up{job=~|'), { kind: 'value', metric: 'up', label: 'job', prefix: '', from: 8, quote: true });
  assert.deepEqual(at('sum by (ins|'), { kind: 'label', metric: null, prefix: 'ins', from: 8 });
  assert.deepEqual(at('sum(x) without (a, b|'), { kind: 'label', metric: null, prefix: 'b', from: 19 });
  assert.deepEqual(at('rate(x[5|'), { kind: 'none' });
  assert.deepEqual(at('x + 12|'), { kind: 'none' });
  assert.deepEqual(at('label_replace(x, "a|'), { kind: 'none' });
});

test('candidates: prefix matches first', () => {
  assert.deepEqual(rankCandidates(['b_up', 'up_x', 'upper', 'down'], 'up'), ['up_x', 'upper', 'b_up']);
  assert.deepEqual(rankCandidates(['up'], 'up'), []);
});

test('error offsets from server messages', () => {
  assert.equal(errorOffset('1:5: parse error: unexpected', 'abcdefgh'), 4);
  assert.equal(errorOffset('2:2: parse error', 'ab\ncd'), 4);
  assert.equal(errorOffset('unexpected character at position 3', 'abcdef'), 3);
  assert.equal(errorOffset('invalid promql query', 'x'), null);
});

test('the syntax checker points at the error', () => {
  for (const ok of [
    'up',
    'sum by (job) (rate(http_requests_total{code=~"5..", job!="x"}[5m])) / ignoring(code) group_left sum(x)',
    'histogram_quantile(0.99, sum(rate(x_bucket[5m])) by (le))',
    'x offset -5m @ start()',
    'max_over_time(deriv(rate(x[1m])[5m:1m])[1h:])',
    '{__name__="up", "utf8.name"="x"}',
    '-1.5e3 + 0x1f * Inf > bool NaN',
    'topk(3, x) and on(a) y unless z or w',
  ]) {
    assert.equal(checkSyntax(ok), null, ok);
  }
  const cases: [string, number, RegExp][] = [
    ['sum(rate(x[5m]) by (a)', 16, /unexpected "by"/],
    ['sum(rate(x[5m])', 15, /end of input/],
    ['up{job=1}', 7, /quoted label value/],
    ['up{job="a"', 10, /"," or "}"/],
    ['rate(x[5m]', 10, /"," or "\)"/],
    ['up $ 1', 3, /unexpected character/],
    ['up{job="a}', 7, /unterminated string/],
    ['x +', 3, /an expression/],
    ['x y', 2, /an operator/],
    ['sum by (a b) (x)', 10, /"," or "\)"/],
  ];
  for (const [expr, offset, msg] of cases) {
    const e = checkSyntax(expr);
    assert.ok(e, expr);
    assert.equal(e.offset, offset, `${expr}: ${e.message}`);
    assert.match(e.message, msg, expr);
  }
});
