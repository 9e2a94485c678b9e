// The alerts page's logic, without the DOM: the notifier's groups as the
// page shows them, silence matchers built from labels and checked against
// them, silence drafts validated into the API's shape, and history events
// told in words.

import type { Labels } from './api';
import { formatDuration, parseDuration } from './time';

/** An acknowledgement as `/api/v1/notify/acks` and the v2 alerts give it. */
export interface AckInfo {
  id: string;
  kind: 'group' | 'alert';
  target: string;
  by: string;
  at: string;
  comment: string;
  expiresAt: string | null;
}

/** Alertmanager's `gettableAlert`, with vigil's `ack`. */
export interface AmAlert {
  labels: Labels;
  annotations: Labels;
  startsAt: string;
  endsAt: string;
  fingerprint: string;
  generatorURL?: string;
  status: { state: string; silencedBy: string[]; inhibitedBy: string[]; mutedBy?: string[] };
  ack?: AckInfo;
}

/** A rule's pending alert, placed in a group by `?pending=true`. */
export interface PendingAlert {
  labels: Labels;
  annotations: Labels;
  state: 'pending';
  activeAt: string;
  value: string;
  fingerprint: string;
}

export interface Escalation {
  policy: string;
  level: number;
  since: string;
  started: string;
}

/** `/api/v2/alerts/groups?pending=true`. */
export interface AmGroup {
  labels: Labels;
  receiver: { name: string | null };
  alerts: AmAlert[];
  id: string;
  key: string;
  acked: boolean;
  escalation: Escalation | null;
  pending?: PendingAlert[];
}

/** A rule's alert from `/api/v1/alerts` (used when the notifier is not configured). */
export interface RuleAlert {
  labels: Labels;
  annotations: Labels;
  state: string;
  activeAt?: string;
  value: string;
}

export type AlertState = 'firing' | 'pending' | 'silenced' | 'inhibited' | 'muted';

export interface AlertRow {
  fingerprint: string;
  labels: Labels;
  annotations: Labels;
  state: AlertState;
  /** When it started (pending: became active), ms; NaN if unknown. */
  since: number;
  value?: string;
  silencedBy: string[];
  /** An ack of this one alert (a group's ack is on the group). */
  ack?: AckInfo;
  generatorURL?: string;
}

export interface GroupView {
  key: string;
  id: string;
  labels: Labels;
  receiver: string;
  alerts: AlertRow[];
  firing: number;
  pending: number;
  /** The most severe alert's severity class. */
  severity: Severity;
  acked: boolean;
  /** The group's own ack, if any. */
  ack?: AckInfo;
  escalation: Escalation | null;
}

export type Severity = 'critical' | 'warning' | 'info' | 'none';
const SEVERITY_RANK: Record<Severity, number> = { critical: 0, warning: 1, info: 2, none: 3 };

/** The colour class of a `severity` label's value. */
export function severityClass(s: string | undefined): Severity {
  switch ((s ?? '').toLowerCase()) {
    case 'critical':
    case 'page':
    case 'error':
    case 'high':
      return 'critical';
    case 'warning':
    case 'warn':
    case 'medium':
      return 'warning';
    case 'info':
    case 'low':
    case 'none':
      return 'info';
    default:
      return 'none';
  }
}

const STATE_RANK: Record<AlertState, number> = { firing: 0, pending: 1, inhibited: 2, muted: 3, silenced: 4 };

function amState(a: AmAlert): AlertState {
  if (a.status.silencedBy?.length) return 'silenced';
  if (a.status.inhibitedBy?.length) return 'inhibited';
  if (a.status.mutedBy?.length || a.status.state === 'suppressed') return 'muted';
  return 'firing';
}

function time(s: string | undefined): number {
  if (!s || s.startsWith('0001-')) return NaN;
  return Date.parse(s);
}

/** A label set as `{a="b", c="d"}`, sorted: a stable name for sorting and display. */
export function labelsText(l: Labels): string {
  return `{${Object.keys(l)
    .sort()
    .map((k) => `${k}=${JSON.stringify(l[k])}`)
    .join(', ')}}`;
}

function compareRows(a: AlertRow, b: AlertRow): number {
  return (
    STATE_RANK[a.state] - STATE_RANK[b.state] ||
    SEVERITY_RANK[severityClass(a.labels.severity)] - SEVERITY_RANK[severityClass(b.labels.severity)] ||
    labelsText(a.labels).localeCompare(labelsText(b.labels))
  );
}

function view(key: string, id: string, labels: Labels, receiver: string, alerts: AlertRow[], rest: Partial<GroupView>): GroupView {
  alerts.sort(compareRows);
  const sev = alerts.map((a) => severityClass(a.labels.severity)).sort((x, y) => SEVERITY_RANK[x] - SEVERITY_RANK[y])[0] ?? 'none';
  return {
    key,
    id,
    labels,
    receiver,
    alerts,
    firing: alerts.filter((a) => a.state !== 'pending').length,
    pending: alerts.filter((a) => a.state === 'pending').length,
    severity: sev,
    acked: false,
    escalation: null,
    ...rest,
  };
}

/** Groups with firing (not silenced) alerts first, then those with pending ones, then muted ones; then by severity and labels. */
function compareGroups(a: GroupView, b: GroupView): number {
  const active = (g: GroupView) => (g.alerts.some((x) => x.state === 'firing') ? 0 : g.pending > 0 ? 1 : 2);
  return active(a) - active(b) || SEVERITY_RANK[a.severity] - SEVERITY_RANK[b.severity] || labelsText(a.labels).localeCompare(labelsText(b.labels));
}

/**
 * The notifier's groups as the page shows them: firing and pending alerts
 * together, each group with its own ack (from `acks`), sorted.
 */
export function buildGroups(groups: AmGroup[], acks: AckInfo[]): GroupView[] {
  return groups
    .map((g) => {
      const rows: AlertRow[] = g.alerts.map((a) => ({
        fingerprint: a.fingerprint,
        labels: a.labels,
        annotations: a.annotations ?? {},
        state: amState(a),
        since: time(a.startsAt),
        silencedBy: a.status.silencedBy ?? [],
        ack: a.ack?.kind === 'alert' ? a.ack : undefined,
        generatorURL: a.generatorURL,
      }));
      for (const p of g.pending ?? []) {
        rows.push({
          fingerprint: p.fingerprint,
          labels: p.labels,
          annotations: p.annotations ?? {},
          state: 'pending',
          since: time(p.activeAt),
          value: p.value,
          silencedBy: [],
        });
      }
      return view(g.key, g.id, g.labels, g.receiver?.name ?? '', rows, {
        acked: g.acked,
        ack: acks.find((a) => a.kind === 'group' && a.target === g.key),
        escalation: g.escalation,
      });
    })
    .sort(compareGroups);
}

/**
 * Alerts on the page by state, each counted once although a `continue`
 * route puts it in several groups: firing, pending, and muted (silenced,
 * inhibited or in a mute time).
 */
export function countAlerts(groups: GroupView[]): { firing: number; pending: number; muted: number } {
  const seen = new Map<string, AlertState>();
  for (const g of groups) for (const a of g.alerts) seen.set(a.fingerprint, a.state);
  const n = { firing: 0, pending: 0, muted: 0 };
  for (const st of seen.values()) n[st === 'firing' ? 'firing' : st === 'pending' ? 'pending' : 'muted']++;
  return n;
}

/** Without the notifier: the rules' alerts, one group per alert name. */
export function groupRuleAlerts(alerts: RuleAlert[]): GroupView[] {
  const by = new Map<string, AlertRow[]>();
  for (const a of alerts) {
    const name = a.labels.alertname ?? '';
    const rows = by.get(name) ?? [];
    rows.push({
      fingerprint: labelsText(a.labels),
      labels: a.labels,
      annotations: a.annotations ?? {},
      state: a.state === 'pending' ? 'pending' : 'firing',
      since: time(a.activeAt),
      value: a.value,
      silencedBy: [],
    });
    by.set(name, rows);
  }
  return [...by.entries()].map(([name, rows]) => view(name, '', { alertname: name }, '', rows, {})).sort(compareGroups);
}

// ---- silences ----

export interface SilenceMatcher {
  name: string;
  value: string;
  isRegex: boolean;
  isEqual: boolean;
}

export interface Silence {
  id: string;
  status: { state: 'active' | 'pending' | 'expired' | string };
  updatedAt: string;
  matchers: SilenceMatcher[];
  startsAt: string;
  endsAt: string;
  createdBy: string;
  comment: string;
}

export type MatchOp = '=' | '!=' | '=~' | '!~';
export const MATCH_OPS: MatchOp[] = ['=', '!=', '=~', '!~'];

export function opOf(m: SilenceMatcher): MatchOp {
  return m.isRegex ? (m.isEqual ? '=~' : '!~') : m.isEqual ? '=' : '!=';
}

export function withOp(m: SilenceMatcher, op: MatchOp): SilenceMatcher {
  return { ...m, isRegex: op === '=~' || op === '!~', isEqual: op === '=' || op === '=~' };
}

/** `name="value"` with the operator, as amtool prints matchers. */
export function matcherText(m: SilenceMatcher): string {
  return `${m.name}${opOf(m)}${JSON.stringify(m.value)}`;
}

/**
 * Matchers that select exactly these labels: one equality matcher per
 * label, `alertname` first, then by name. Labels named in `skip` are left
 * out.
 */
export function matchersFromLabels(labels: Labels, skip: string[] = []): SilenceMatcher[] {
  return Object.keys(labels)
    .filter((k) => k !== '__name__' && !skip.includes(k))
    .sort((a, b) => (a === 'alertname' ? -1 : b === 'alertname' ? 1 : a.localeCompare(b)))
    .map((name) => ({ name, value: labels[name], isRegex: false, isEqual: true }));
}

/** Whether one matcher matches a value (a missing label is the empty string); regexes are anchored. Throws on a bad regex. */
export function matcherMatches(m: SilenceMatcher, value: string | undefined): boolean {
  const v = value ?? '';
  const hit = m.isRegex ? new RegExp(`^(?:${m.value})$`, 'u').test(v) : v === m.value;
  return hit === m.isEqual;
}

/** Whether all matchers match a label set. */
export function matchesAll(ms: SilenceMatcher[], labels: Labels): boolean {
  return ms.every((m) => matcherMatches(m, labels[m.name]));
}

export interface SilenceDraft {
  id?: string;
  matchers: SilenceMatcher[];
  /** A duration from now (`2h`, `1d12h`). */
  duration: string;
  comment: string;
  createdBy: string;
}

export interface PostableSilence {
  id?: string;
  matchers: SilenceMatcher[];
  startsAt: string;
  endsAt: string;
  createdBy: string;
  comment: string;
}

/**
 * Checks a draft as Alertmanager would and builds the POST body: it starts
 * now and ends `duration` later. Rows with an empty name are dropped.
 */
export function silenceFromDraft(d: SilenceDraft, now: number): { silence: PostableSilence } | { error: string } {
  const matchers = d.matchers.map((m) => ({ ...m, name: m.name.trim() })).filter((m) => m.name !== '');
  if (matchers.length === 0) return { error: 'A silence needs at least one matcher.' };
  for (const m of matchers) {
    if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(m.name)) return { error: `Invalid label name "${m.name}".` };
    if (m.isRegex) {
      try {
        new RegExp(m.value, 'u');
      } catch (e) {
        return { error: `Invalid regular expression for ${m.name}: ${e instanceof Error ? e.message : e}` };
      }
    }
  }
  if (matchers.every((m) => matcherMatches(m, ''))) return { error: 'At least one matcher must not match the empty string.' };
  const ms = parseDuration(d.duration);
  if (ms === null || ms <= 0) return { error: `Invalid duration "${d.duration}" (e.g. 2h, 30m, 1d).` };
  if (!d.createdBy.trim()) return { error: 'Say who creates the silence.' };
  if (!d.comment.trim()) return { error: 'A silence needs a comment.' };
  const silence: PostableSilence = {
    matchers,
    startsAt: new Date(now).toISOString(),
    endsAt: new Date(now + ms).toISOString(),
    createdBy: d.createdBy.trim(),
    comment: d.comment.trim(),
  };
  if (d.id) silence.id = d.id;
  return { silence };
}

/** Active and pending silences first (soonest end first), expired ones last (latest end first). */
export function sortSilences(ss: Silence[]): Silence[] {
  const rank = (s: Silence) => (s.status.state === 'active' ? 0 : s.status.state === 'pending' ? 1 : 2);
  return [...ss].sort((a, b) => {
    const r = rank(a) - rank(b);
    if (r) return r;
    const ea = Date.parse(a.endsAt);
    const eb = Date.parse(b.endsAt);
    return rank(a) === 2 ? eb - ea : ea - eb;
  });
}

// ---- history ----

type AckTargetJson = { group: string } | { alert: number };

/** One event of `/api/v1/notify/history`. */
export type HistoryEvent = { at: string } & (
  | { type: 'fired'; labels: [string, string][] }
  | { type: 'resolved'; labels: [string, string][] }
  | { type: 'notified'; receiver: string; integration: string; firing: unknown[]; resolved: unknown[]; escalation_level: number | null }
  | { type: 'notify_failed'; receiver: string; integration: string; error: string }
  | { type: 'acked'; target: AckTargetJson; by: string; comment: string; expires_at: number | null }
  | { type: 'ack_cleared'; target: AckTargetJson; reason: string }
  | { type: 'escalated'; policy: string; level: number }
  | { type: 'escalation_ended'; reason: string }
  | { type: 'silence'; id: string; action: string; by: string }
  | { type: string }
);

function pairs(l: [string, string][]): string {
  return `{${l.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(', ')}}`;
}

/** An event in words, and whether it is bad news. */
export function describeEvent(e: HistoryEvent): { text: string; bad: boolean } {
  const x = e as Record<string, unknown> & HistoryEvent;
  switch (e.type) {
    case 'notified': {
      const n = x as Extract<HistoryEvent, { type: 'notified' }>;
      const what = [n.firing.length ? `${n.firing.length} firing` : '', n.resolved.length ? `${n.resolved.length} resolved` : ''].filter(Boolean).join(', ');
      const lvl = n.escalation_level ? ` (escalation level ${n.escalation_level})` : '';
      return { text: `Notified ${n.receiver} by ${n.integration}: ${what || 'no alerts'}${lvl}`, bad: false };
    }
    case 'notify_failed': {
      const n = x as Extract<HistoryEvent, { type: 'notify_failed' }>;
      return { text: `Notifying ${n.receiver} by ${n.integration} failed: ${n.error}`, bad: true };
    }
    case 'acked': {
      const a = x as Extract<HistoryEvent, { type: 'acked' }>;
      const what = 'group' in a.target ? 'the group' : 'an alert';
      const exp = a.expires_at ? ` until ${new Date(a.expires_at).toISOString()}` : '';
      return { text: `${a.by} acknowledged ${what}${exp}${a.comment ? `: ${a.comment}` : ''}`, bad: false };
    }
    case 'ack_cleared': {
      const a = x as Extract<HistoryEvent, { type: 'ack_cleared' }>;
      return { text: `Acknowledgement ended: ${a.reason}`, bad: false };
    }
    case 'escalated': {
      const a = x as Extract<HistoryEvent, { type: 'escalated' }>;
      return { text: `Escalated to level ${a.level} (policy ${a.policy})`, bad: true };
    }
    case 'escalation_ended': {
      const a = x as Extract<HistoryEvent, { type: 'escalation_ended' }>;
      return { text: `Escalation ended: ${a.reason}`, bad: false };
    }
    case 'silence': {
      const a = x as Extract<HistoryEvent, { type: 'silence' }>;
      return { text: `Silence ${a.id} ${a.action}${a.by ? ` by ${a.by}` : ''}`, bad: false };
    }
    case 'fired':
      return { text: `Fired: ${pairs((x as { labels: [string, string][] }).labels ?? [])}`, bad: true };
    case 'resolved':
      return { text: `Resolved: ${pairs((x as { labels: [string, string][] }).labels ?? [])}`, bad: false };
    default:
      return { text: e.type, bad: false };
  }
}

/** "Escalation p: level 2, for 5m" (or "held by the acknowledgement" when acked). */
export function escalationText(e: Escalation, now: number, acked = false): string {
  const since = Date.parse(e.since);
  const held = acked ? ', held by the acknowledgement' : '';
  return `Escalation ${e.policy}: level ${e.level}${Number.isNaN(since) ? '' : `, for ${formatDuration(Math.round(Math.max(0, now - since) / 1000) * 1000)}`}${held}`;
}
