import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseLabelValues } from '../src/dashboards';

test('label_values forms', () => {
  assert.deepEqual(parseLabelValues('label_values(job)'), { selector: null, label: 'job' });
  assert.deepEqual(parseLabelValues('label_values(up{job="$job", a=~"x,y"}, instance)'), {
    selector: 'up{job="$job", a=~"x,y"}',
    label: 'instance',
  });
  assert.equal(parseLabelValues('query_result(up)'), null);
});
