import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  buildGroups,
  countAlerts,
  describeEvent,
  escalationText,
  groupRuleAlerts,
  matcherMatches,
  matcherText,
  matchersFromLabels,
  matchesAll,
  opOf,
  severityClass,
  silenceFromDraft,
  sortSilences,
  withOp,
  type AmAlert,
  type AmGroup,
  type HistoryEvent,
  type Silence,
} from '../src/alerting';

function amAlert(labels: Record<string, string>, extra: Partial<AmAlert['status']> = {}, ack?: AmAlert['ack']): AmAlert {
  return {
    labels,
    annotations: { summary: `${labels.alertname} is up` },
    startsAt: '2024-05-01T10:00:00Z',
    endsAt: '2024-05-01T11:00:00Z',
    fingerprint: labels.instance ?? labels.alertname,
    status: { state: 'active', silencedBy: [], inhibitedBy: [], mutedBy: [], ...extra },
    ack,
  };
}

test('severity classes', () => {
  assert.equal(severityClass('critical'), 'critical');
  assert.equal(severityClass('Page'), 'critical');
  assert.equal(severityClass('warning'), 'warning');
  assert.equal(severityClass('info'), 'info');
  assert.equal(severityClass(undefined), 'none');
  assert.equal(severityClass('weird'), 'none');
});

test('groups: firing and pending together, the group ack found, sorted by state and severity', () => {
  const groups: AmGroup[] = [
    {
      labels: { alertname: 'DiskLow' },
      receiver: { name: 'slack' },
      alerts: [amAlert({ alertname: 'DiskLow', severity: 'warning', instance: 'a' }, { state: 'suppressed', silencedBy: ['s1'] })],
      id: 'g1',
      key: '{}:{alertname="DiskLow"}',
      acked: false,
      escalation: null,
    },
    {
      labels: { alertname: 'Down' },
      receiver: { name: 'pager' },
      alerts: [
        amAlert({ alertname: 'Down', severity: 'warning', instance: 'b' }),
        amAlert({ alertname: 'Down', severity: 'critical', instance: 'c' }, {}, { id: 'k', kind: 'group', target: 'x', by: 'al', at: '', comment: '', expiresAt: null }),
      ],
      id: 'g2',
      key: '{}:{alertname="Down"}',
      acked: true,
      escalation: { policy: 'p', level: 2, since: '2024-05-01T10:05:00Z', started: '2024-05-01T10:00:00Z' },
      pending: [{ labels: { alertname: 'Down', severity: 'info', instance: 'd' }, annotations: {}, state: 'pending', activeAt: '2024-05-01T10:09:00Z', value: '1', fingerprint: 'd' }],
    },
    {
      labels: { alertname: 'Soon' },
      receiver: { name: null },
      alerts: [],
      id: 'g3',
      key: '{}:{alertname="Soon"}',
      acked: false,
      escalation: null,
      pending: [{ labels: { alertname: 'Soon', severity: 'critical' }, annotations: {}, state: 'pending', activeAt: '2024-05-01T10:09:00Z', value: '3', fingerprint: 'e' }],
    },
  ];
  const acks = [
    { id: 'A1', kind: 'group' as const, target: '{}:{alertname="Down"}', by: 'alice', at: '2024-05-01T10:06:00Z', comment: 'on it', expiresAt: null },
    { id: 'A2', kind: 'alert' as const, target: 'zz', by: 'bob', at: '2024-05-01T10:06:00Z', comment: '', expiresAt: null },
  ];
  const v = buildGroups(groups, acks);
  // The group with firing alerts first; the silenced one after the pending-only one.
  assert.deepEqual(
    v.map((g) => g.id),
    ['g2', 'g3', 'g1'],
  );
  const down = v[0];
  assert.equal(down.severity, 'critical');
  assert.equal(down.receiver, 'pager');
  assert.equal(down.firing, 2);
  assert.equal(down.pending, 1);
  assert.equal(down.ack?.by, 'alice');
  assert.equal(down.escalation?.level, 2);
  // Critical before warning; pending last. A group's ack is not an alert's.
  assert.deepEqual(
    down.alerts.map((a) => [a.labels.instance, a.state]),
    [
      ['c', 'firing'],
      ['b', 'firing'],
      ['d', 'pending'],
    ],
  );
  assert.equal(down.alerts[0].ack, undefined);
  assert.equal(down.alerts[2].value, '1');
  assert.equal(down.alerts[0].since, Date.parse('2024-05-01T10:00:00Z'));
  assert.equal(v[1].receiver, '');
  assert.equal(v[1].firing, 0);
  assert.deepEqual(
    v[2].alerts.map((a) => [a.state, a.silencedBy]),
    [['silenced', ['s1']]],
  );
  assert.equal(v[2].firing, 1);
  assert.equal(v[2].ack, undefined);
  assert.deepEqual(countAlerts(v), { firing: 2, pending: 2, muted: 1 });
  // An alert in two groups (a `continue` route) counts once.
  assert.deepEqual(countAlerts([...v, ...buildGroups([{ ...groups[1], key: 'other', id: 'g4' }], [])]), { firing: 2, pending: 2, muted: 1 });
});

test('without the notifier: the rules alerts by name', () => {
  const v = groupRuleAlerts([
    { labels: { alertname: 'B', severity: 'warning' }, annotations: {}, state: 'firing', activeAt: '2024-05-01T10:00:00Z', value: '1e+00' },
    { labels: { alertname: 'A', severity: 'critical', i: '1' }, annotations: {}, state: 'pending', value: '1e+00' },
    { labels: { alertname: 'A', severity: 'critical', i: '2' }, annotations: {}, state: 'firing', value: '2e+00' },
  ]);
  assert.deepEqual(
    v.map((g) => [g.labels.alertname, g.firing, g.pending, g.severity]),
    [
      ['A', 1, 1, 'critical'],
      ['B', 1, 0, 'warning'],
    ],
  );
  assert.ok(Number.isNaN(v[0].alerts[1].since));
});

test('matchers from an alert: alertname first, then by name, equality', () => {
  const ms = matchersFromLabels({ severity: 'critical', alertname: 'Down', instance: 'a:1', __name__: 'x' });
  assert.deepEqual(
    ms.map(matcherText),
    ['alertname="Down"', 'instance="a:1"', 'severity="critical"'],
  );
  assert.deepEqual(matchersFromLabels({ a: '1', b: '2' }, ['b']).map(matcherText), ['a="1"']);
  const m = ms[0];
  assert.equal(opOf(m), '=');
  for (const op of ['=', '!=', '=~', '!~'] as const) assert.equal(opOf(withOp(m, op)), op);
  assert.equal(matcherText(withOp({ name: 'x', value: 'a"b', isRegex: false, isEqual: true }, '!~')), 'x!~"a\\"b"');
});

test('matchers match as Alertmanager: anchored regexes, a missing label is empty', () => {
  const l = { alertname: 'Down', instance: 'web-1' };
  assert.ok(matchesAll(matchersFromLabels(l), l));
  assert.ok(!matchesAll(matchersFromLabels(l), { ...l, instance: 'web-2' }));
  assert.ok(matcherMatches({ name: 'instance', value: 'web-.*', isRegex: true, isEqual: true }, 'web-1'));
  assert.ok(!matcherMatches({ name: 'instance', value: 'web', isRegex: true, isEqual: true }, 'web-1'));
  assert.ok(matcherMatches({ name: 'instance', value: 'web', isRegex: true, isEqual: false }, 'web-1'));
  assert.ok(matcherMatches({ name: 'team', value: '', isRegex: false, isEqual: true }, undefined));
  assert.ok(!matcherMatches({ name: 'team', value: 'x', isRegex: false, isEqual: false }, 'x'));
  assert.throws(() => matcherMatches({ name: 'a', value: '(', isRegex: true, isEqual: true }, 'x'));
});

test('a silence draft becomes the POST body, or an error', () => {
  const now = Date.parse('2024-05-01T10:00:00Z');
  const ms = matchersFromLabels({ alertname: 'Down' });
  const ok = silenceFromDraft({ matchers: [...ms, { name: ' ', value: '', isRegex: false, isEqual: true }], duration: '1h30m', comment: ' maint ', createdBy: 'bob ' }, now);
  assert.deepEqual(ok, {
    silence: {
      matchers: [{ name: 'alertname', value: 'Down', isRegex: false, isEqual: true }],
      startsAt: '2024-05-01T10:00:00.000Z',
      endsAt: '2024-05-01T11:30:00.000Z',
      createdBy: 'bob',
      comment: 'maint',
    },
  });
  const err = (d: Partial<Parameters<typeof silenceFromDraft>[0]>) => {
    const r = silenceFromDraft({ matchers: ms, duration: '2h', comment: 'c', createdBy: 'b', ...d }, now);
    return 'error' in r ? r.error : '';
  };
  assert.match(err({ matchers: [] }), /at least one matcher/);
  assert.match(err({ matchers: [{ name: 'a', value: '.*', isRegex: true, isEqual: true }] }), /must not match the empty string/);
  assert.match(err({ matchers: [{ name: 'a', value: '(', isRegex: true, isEqual: true }] }), /Invalid regular expression/);
  assert.match(err({ matchers: [{ name: '1a', value: 'x', isRegex: false, isEqual: true }] }), /Invalid label name/);
  assert.match(err({ duration: 'soon' }), /Invalid duration/);
  assert.match(err({ duration: '0s' }), /Invalid duration/);
  assert.match(err({ comment: '  ' }), /comment/);
  assert.match(err({ createdBy: '' }), /who creates/);
  assert.equal(err({}), '');
});

test('silences: live ones by soonest end, expired last by latest end', () => {
  const s = (id: string, state: string, endsAt: string): Silence => ({
    id,
    status: { state },
    updatedAt: '',
    matchers: [],
    startsAt: '',
    endsAt,
    createdBy: '',
    comment: '',
  });
  const sorted = sortSilences([
    s('e1', 'expired', '2024-01-01T00:00:00Z'),
    s('a2', 'active', '2024-06-02T00:00:00Z'),
    s('p', 'pending', '2024-06-01T00:00:00Z'),
    s('e2', 'expired', '2024-02-01T00:00:00Z'),
    s('a1', 'active', '2024-06-01T00:00:00Z'),
  ]);
  assert.deepEqual(
    sorted.map((x) => x.id),
    ['a1', 'a2', 'p', 'e2', 'e1'],
  );
});

test('history events in words', () => {
  const at = '2024-05-01T10:00:00Z';
  const d = (e: object) => describeEvent({ at, ...e } as HistoryEvent);
  assert.deepEqual(d({ type: 'notified', receiver: 'slack', integration: 'slack', firing: [1, 2], resolved: [], escalation_level: null }), {
    text: 'Notified slack by slack: 2 firing',
    bad: false,
  });
  assert.equal(d({ type: 'notified', receiver: 'cto', integration: 'sms', firing: [1], resolved: [3], escalation_level: 3 }).text, 'Notified cto by sms: 1 firing, 1 resolved (escalation level 3)');
  assert.deepEqual(d({ type: 'notify_failed', receiver: 'r', integration: 'webhook', error: 'refused' }), { text: 'Notifying r by webhook failed: refused', bad: true });
  assert.equal(d({ type: 'acked', target: { group: 'k' }, by: 'alice', comment: 'on it', expires_at: null }).text, 'alice acknowledged the group: on it');
  assert.equal(d({ type: 'acked', target: { alert: 5 }, by: 'bob', comment: '', expires_at: 0 }).text, 'bob acknowledged an alert');
  assert.equal(d({ type: 'ack_cleared', target: { group: 'k' }, reason: 'resolved' }).text, 'Acknowledgement ended: resolved');
  assert.deepEqual(d({ type: 'escalated', policy: 'ev', level: 2 }), { text: 'Escalated to level 2 (policy ev)', bad: true });
  assert.equal(d({ type: 'escalation_ended', reason: 'acknowledged' }).text, 'Escalation ended: acknowledged');
  assert.equal(d({ type: 'silence', id: 'abc', action: 'expired', by: 'bob' }).text, 'Silence abc expired by bob');
  assert.equal(d({ type: 'fired', labels: [['alertname', 'X']] }).text, 'Fired: {alertname="X"}');
  assert.equal(d({ type: 'new_kind' }).text, 'new_kind');
});

test('escalation text', () => {
  const now = Date.parse('2024-05-01T10:10:00Z');
  assert.equal(escalationText({ policy: 'ev', level: 2, since: '2024-05-01T10:05:00Z', started: '' }, now), 'Escalation ev: level 2, for 5m');
  assert.equal(escalationText({ policy: 'ev', level: 2, since: '2024-05-01T10:05:00.600Z', started: '' }, now, true), 'Escalation ev: level 2, for 4m59s, held by the acknowledgement');
  assert.equal(escalationText({ policy: 'ev', level: 1, since: 'x', started: '' }, now), 'Escalation ev: level 1');
});
