// `/alerts`: firing and pending alerts grouped as vigil's notifier groups
// them, with acknowledgement, silences (created from an alert with its
// matchers, listed, expired), the escalation level and each group's
// notification history. Without a `notify:` section it falls back to the
// rules' alerts, read-only.

import { ApiError, callJson, get } from './api';
import {
  buildGroups,
  countAlerts,
  describeEvent,
  escalationText,
  groupRuleAlerts,
  labelsText,
  MATCH_OPS,
  matcherText,
  matchersFromLabels,
  matchesAll,
  opOf,
  severityClass,
  silenceFromDraft,
  sortSilences,
  withOp,
  type AckInfo,
  type AlertRow,
  type AmGroup,
  type GroupView,
  type HistoryEvent,
  type MatchOp,
  type RuleAlert,
  type Silence,
  type SilenceMatcher,
} from './alerting';
import { h, mount } from './dom';
import { age, labelChips } from './pages';
import { formatAge, formatDuration, formatTime, parseDuration } from './time';

const USER_KEY = 'vigil.user';
const REFRESH_MS = 30_000;

function savedUser(): string {
  try {
    return localStorage.getItem(USER_KEY) ?? '';
  } catch {
    return '';
  }
}

function saveUser(v: string) {
  try {
    localStorage.setItem(USER_KEY, v.trim());
  } catch {
    // Private mode: the name is asked again next time.
  }
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

interface PageData {
  groups: GroupView[];
  /** The notifier is configured: acks and silences work. */
  notifier: boolean;
  silences: Silence[];
  errors: string[];
}

async function load(): Promise<PageData> {
  const [groups, acks, silences] = await Promise.allSettled([
    callJson<AmGroup[]>('GET', 'api/v2/alerts/groups', undefined, { pending: 'true' }),
    callJson<AckInfo[]>('GET', 'api/v1/notify/acks'),
    callJson<Silence[]>('GET', 'api/v2/silences'),
  ]);
  if (groups.status === 'rejected' && groups.reason instanceof ApiError && groups.reason.status === 503) {
    const data = await get<{ alerts: RuleAlert[] }>('api/v1/alerts');
    return { groups: groupRuleAlerts(data.alerts), notifier: false, silences: [], errors: [] };
  }
  const errors: string[] = [];
  for (const r of [groups, acks, silences]) if (r.status === 'rejected') errors.push(message(r.reason));
  return {
    groups: groups.status === 'fulfilled' ? buildGroups(groups.value, acks.status === 'fulfilled' ? acks.value : []) : [],
    notifier: true,
    silences: silences.status === 'fulfilled' ? sortSilences(silences.value) : [],
    errors,
  };
}

function badge(cls: string, text: string, title?: string): HTMLElement {
  return h('span.badge.' + cls, { title }, text);
}

const STATE_BADGE: Record<string, string> = { firing: 'bad', pending: 'warn', silenced: 'muted', inhibited: 'muted', muted: 'muted' };

export async function alertsPage(root: HTMLElement): Promise<() => void> {
  let data: PageData = await load();
  const openHistory = new Set<string>();
  const status = h('div.action-status', { role: 'status' });
  const content = h('div');
  const updated = h('span.muted.updated');
  const userInput = h('input.user', {
    value: savedUser(),
    placeholder: 'your name',
    title: 'Acknowledgements and silences are made in this name',
    onchange: (e: Event) => saveUser((e.target as HTMLInputElement).value),
  }) as HTMLInputElement;
  let showExpired = false;
  let reloading = false;

  const user = () => userInput.value.trim();

  function flash(text: string, ok: boolean) {
    mount(status, h(ok ? 'div.notice' : 'div.error', text));
  }

  async function reload() {
    if (reloading) return;
    reloading = true;
    try {
      data = await load();
      render();
    } catch (e) {
      flash(`Could not load the alerts: ${message(e)}`, false);
    } finally {
      reloading = false;
    }
  }

  /** All alerts on the page (for a silence's preview). */
  const allRows = (): AlertRow[] => data.groups.flatMap((g) => g.alerts);

  /** An inline form: its error line, and a submit that keeps the form open on failure. */
  function form(cls: string, fields: (HTMLElement | null)[], submit: string, onsubmit: () => Promise<string>): HTMLFormElement {
    const err = h('div.form-error');
    const button = h('button.primary', { type: 'submit' }, submit) as HTMLButtonElement;
    const f = h(
      'form.inline-form.' + cls,
      fields,
      err,
      h('div.form-buttons', button, h('button', { type: 'button', onclick: () => f.remove() }, 'Cancel')),
    ) as HTMLFormElement;
    f.addEventListener('submit', (e) => {
      e.preventDefault();
      button.disabled = true;
      mount(err);
      onsubmit().then(
        async (done) => {
          f.remove();
          flash(done, true);
          await reload();
        },
        (e: unknown) => {
          button.disabled = false;
          mount(err, h('div.error', message(e)));
        },
      );
    });
    return f;
  }

  function field(label: string, input: HTMLElement): HTMLElement {
    return h('label.field', h('span', label), input);
  }

  function byInput(name: string): HTMLInputElement {
    return h('input', { name, value: user(), placeholder: 'your name', required: true }) as HTMLInputElement;
  }

  function ackForm(target: { group: string } | { fingerprint: string }, what: string): HTMLFormElement {
    const comment = h('textarea', { name: 'comment', rows: 2, placeholder: 'what is being done' }) as HTMLTextAreaElement;
    const expires = h('input', { name: 'expires', placeholder: 'never (or 2h, 1d)', size: 14 }) as HTMLInputElement;
    const by = byInput('by');
    return form('ack-form', [h('h3', `Acknowledge ${what}`), field('Comment', comment), h('div.form-row', field('By', by), field('Expires in', expires))], 'Acknowledge', async () => {
      const who = by.value.trim();
      if (!who) throw new Error('Say who acknowledges.');
      const exp = expires.value.trim();
      if (exp && !parseDuration(exp)) throw new Error(`Invalid duration "${exp}" (e.g. 2h, 30m, 1d).`);
      saveUser(who);
      userInput.value = who;
      const ack = await callJson<AckInfo>('POST', 'api/v1/notify/ack', { ...target, by: who, comment: comment.value.trim(), expires_in: exp || undefined });
      return `Acknowledged ${what} (by ${ack.by}).`;
    });
  }

  function silenceForm(initial: SilenceMatcher[], what: string): HTMLFormElement {
    const rows: SilenceMatcher[] = initial.map((m) => ({ ...m }));
    const list = h('div.matchers');
    const preview = h('div.silence-preview.muted');
    const duration = h('input', { name: 'duration', value: '2h', size: 8 }) as HTMLInputElement;
    const ends = h('span.muted.ends');
    const comment = h('textarea', { name: 'comment', rows: 2, placeholder: 'why' }) as HTMLTextAreaElement;
    const by = byInput('createdBy');

    const updatePreview = () => {
      const ms = rows.filter((m) => m.name.trim());
      try {
        const n = ms.length ? allRows().filter((r) => matchesAll(ms, r.labels)).length : 0;
        mount(preview, `Matches ${n} of the ${allRows().length} alerts on this page.`);
      } catch (e) {
        mount(preview, h('span.error-text', message(e)));
      }
      const d = parseDuration(duration.value);
      mount(ends, d ? `until ${formatTime(Date.now() + d)}` : 'invalid duration');
    };
    const draw = () => {
      mount(
        list,
        rows.map((m, i) =>
          h(
            'div.matcher-row',
            h('input.m-name', { value: m.name, placeholder: 'label', size: 14, oninput: (e: Event) => ((rows[i].name = (e.target as HTMLInputElement).value), updatePreview()) }),
            h(
              'select.m-op',
              { onchange: (e: Event) => ((rows[i] = withOp(rows[i], (e.target as HTMLSelectElement).value as MatchOp)), updatePreview()) },
              MATCH_OPS.map((op) => h('option', { value: op, selected: op === opOf(m) }, op)),
            ),
            h('input.m-value', { value: m.value, placeholder: 'value', size: 28, oninput: (e: Event) => ((rows[i].value = (e.target as HTMLInputElement).value), updatePreview()) }),
            h('button.m-remove', { type: 'button', title: 'Remove this matcher', onclick: () => (rows.splice(i, 1), draw()) }, '×'),
          ),
        ),
        h('button.m-add', { type: 'button', onclick: () => (rows.push({ name: '', value: '', isRegex: false, isEqual: true }), draw()) }, '+ Matcher'),
      );
      updatePreview();
    };
    duration.addEventListener('input', updatePreview);
    draw();
    return form(
      'silence-form',
      [h('h3', `Silence ${what}`), h('div.field', h('span', 'Matchers'), list), preview, h('div.form-row', field('Duration', duration), ends), field('Comment', comment), field('Created by', by)],
      'Create silence',
      async () => {
        const r = silenceFromDraft({ matchers: rows, duration: duration.value, comment: comment.value, createdBy: by.value }, Date.now());
        if ('error' in r) throw new Error(r.error);
        saveUser(r.silence.createdBy);
        userInput.value = r.silence.createdBy;
        const res = await callJson<{ silenceID: string }>('POST', 'api/v2/silences', r.silence);
        return `Silence ${res.silenceID} created.`;
      },
    );
  }

  async function fillHistory(g: GroupView, el: HTMLElement) {
    mount(el, h('div.muted', 'Loading the history…'));
    try {
      const events = await callJson<HistoryEvent[]>('GET', 'api/v1/notify/history', undefined, { group: g.key, limit: '50' });
      const now = Date.now();
      mount(
        el,
        h('h3', 'Notification history'),
        events.length === 0
          ? h('div.muted', 'Nothing sent for this group yet.')
          : h(
              'ol.history-list',
              [...events].reverse().map((e) => {
                const d = describeEvent(e);
                const t = Date.parse(e.at);
                return h('li' + (d.bad ? '.bad' : ''), { 'data-type': e.type }, h('span.muted', { title: e.at }, formatTime(t), ` (${formatAge(t, now)})`), ' ', d.text);
              }),
            ),
      );
    } catch (e) {
      mount(el, h('div.error', `Could not load the history: ${message(e)}`));
    }
  }

  function alertRow(g: GroupView, a: AlertRow, forms: HTMLElement, now: number, values: boolean): HTMLElement {
    const shown = Object.fromEntries(Object.entries(a.labels).filter(([k]) => k !== 'alertname' && k !== 'severity' && g.labels[k] === undefined));
    const silencedBy = a.silencedBy.map((id) => data.silences.find((s) => s.id === id));
    return h(
      'tr.alert-row',
      { 'data-fingerprint': a.fingerprint, 'data-state': a.state },
      h('td', h('strong', a.labels.alertname ?? '')),
      h(
        'td',
        badge(STATE_BADGE[a.state] ?? 'muted', a.state),
        a.silencedBy.length ? h('div.muted.small', 'by ', silencedBy.map((s, i) => h('span', { title: s ? `${s.comment} (${s.createdBy})` : '' }, a.silencedBy[i].slice(0, 8)))) : null,
      ),
      h('td', h('span.severity.' + severityClass(a.labels.severity), a.labels.severity ?? '')),
      h('td', { title: Number.isNaN(a.since) ? '' : new Date(a.since).toISOString() }, Number.isNaN(a.since) ? '' : formatAge(a.since, now)),
      values && h('td', a.value ?? ''),
      h('td', labelChips(shown)),
      h(
        'td',
        a.annotations.summary ?? a.annotations.description ?? '',
        a.ack
          ? h(
              'div.ack-info.small',
              `Acknowledged by ${a.ack.by}${a.ack.comment ? `: ${a.ack.comment}` : ''} `,
              h('button.unack.small', { onclick: () => void act(`Acknowledgement ${a.ack!.id} removed`, 'Could not remove the acknowledgement', () => callJson('DELETE', `api/v1/notify/acks/${encodeURIComponent(a.ack!.id)}`)) }, 'Remove'),
            )
          : null,
      ),
      h(
        'td.actions',
        data.notifier && a.state !== 'pending' && !a.ack && !g.acked
          ? h('button.ack-alert', { onclick: () => mount(forms, ackForm({ fingerprint: a.fingerprint }, `this ${a.labels.alertname ?? ''} alert`)) }, 'Ack')
          : null,
        data.notifier ? h('button.silence-alert', { onclick: () => mount(forms, silenceForm(matchersFromLabels(a.labels), `this ${a.labels.alertname ?? ''} alert`)) }, 'Silence') : null,
      ),
    );
  }

  function groupEl(g: GroupView, now: number): HTMLElement {
    const forms = h('div.forms');
    const hist = h('div.history');
    const inNotifier = g.alerts.some((a) => a.state !== 'pending');
    // The notifier does not know values; pending alerts and the rules' alerts do.
    const values = g.alerts.some((a) => a.value !== undefined);
    const toggleHistory = () => {
      if (openHistory.has(g.key)) {
        openHistory.delete(g.key);
        mount(hist);
      } else {
        openHistory.add(g.key);
        void fillHistory(g, hist);
      }
    };
    if (openHistory.has(g.key)) void fillHistory(g, hist);
    const title = Object.keys(g.labels).length ? labelChips(g.labels) : h('span.muted', 'all alerts');
    const groupWhat = `the group ${labelsText(g.labels)}`;
    return h(
      'section.panel.alert-group.sev-' + g.severity,
      { 'data-key': g.key, 'data-id': g.id, 'data-severity': g.severity },
      h(
        'div.group-head',
        title,
        g.receiver ? h('span.muted', { title: 'receiver' }, `→ ${g.receiver}`) : null,
        g.firing ? badge('bad', `${g.firing} firing`) : null,
        g.pending ? badge('warn', `${g.pending} pending`) : null,
        g.acked ? badge('ok.acked', 'acknowledged') : null,
        g.escalation ? badge((g.acked ? 'muted' : 'bad') + '.escalation-level', `escalation level ${g.escalation.level}`, escalationText(g.escalation, now, g.acked)) : null,
        h('span.spacer'),
        data.notifier && inNotifier && !g.acked ? h('button.ack-group', { onclick: () => mount(forms, ackForm({ group: g.id }, groupWhat)) }, 'Acknowledge') : null,
        data.notifier ? h('button.silence-group', { onclick: () => mount(forms, silenceForm(matchersFromLabels(g.labels), groupWhat)) }, 'Silence group') : null,
        data.notifier && inNotifier ? h('button.history-toggle', { onclick: toggleHistory }, 'History') : null,
      ),
      g.ack
        ? h(
            'div.ack-info',
            `Acknowledged by ${g.ack.by} ${age(g.ack.at, now)}`,
            g.ack.comment ? `: ${g.ack.comment}` : '',
            g.ack.expiresAt ? h('span.muted', ` (until ${formatTime(Date.parse(g.ack.expiresAt))})`) : '',
            ' ',
            h('button.unack.small', { onclick: () => void act(`Acknowledgement ${g.ack!.id} removed`, 'Could not remove the acknowledgement', () => callJson('DELETE', `api/v1/notify/acks/${encodeURIComponent(g.ack!.id)}`)) }, 'Remove'),
          )
        : null,
      g.escalation ? h('div.escalation' + (g.acked ? '.held' : ''), escalationText(g.escalation, now, g.acked), ` (started ${age(g.escalation.started, now)})`) : null,
      forms,
      h(
        'table.grid.alert-table',
        h('thead', h('tr', ['Alert', 'State', 'Severity', 'Since', values ? 'Value' : null, 'Labels', 'Summary', ''].map((c) => c !== null && h('th', c)))),
        h('tbody', g.alerts.map((a) => alertRow(g, a, forms, now, values))),
      ),
      hist,
    );
  }

  /** An action from a button: its outcome shows at the top, then the page reloads. */
  async function act(done: string, failed: string, fn: () => Promise<unknown>) {
    try {
      await fn();
      flash(`${done}.`, true);
    } catch (e) {
      flash(`${failed}: ${message(e)}`, false);
    }
    await reload();
  }

  function silencesEl(now: number): HTMLElement {
    const forms = h('div.forms');
    const live = data.silences.filter((s) => s.status.state !== 'expired');
    const expired = data.silences.length - live.length;
    const shown = showExpired ? data.silences : live;
    const when = (iso: string) => {
      const t = Date.parse(iso);
      return h('span', { title: iso }, t > now ? `in ${formatDuration(Math.round((t - now) / 1000) * 1000)}` : formatAge(t, now));
    };
    return h(
      'section.panel.silences',
      h(
        'div.group-head',
        h('h2', 'Silences ', h('span.muted', `(${live.length} active or pending, ${expired} expired)`)),
        h('span.spacer'),
        h('label.check', h('input', { type: 'checkbox', checked: showExpired, onchange: (e: Event) => ((showExpired = (e.target as HTMLInputElement).checked), render()) }), 'Show expired'),
        h('button.new-silence', { onclick: () => mount(forms, silenceForm([{ name: 'alertname', value: '', isRegex: false, isEqual: true }], 'alerts')) }, 'New silence'),
      ),
      forms,
      shown.length === 0
        ? h('p.muted', 'No silences.')
        : h(
            'table.grid',
            h('thead', h('tr', ['State', 'Matchers', 'Starts', 'Ends', 'Created by', 'Comment', 'Matches now', ''].map((c) => h('th', c)))),
            h(
              'tbody',
              shown.map((s) => {
                let n = 0;
                try {
                  n = allRows().filter((r) => matchesAll(s.matchers, r.labels)).length;
                } catch {
                  // A regex JavaScript does not take: no count.
                }
                return h(
                  'tr.silence-row',
                  { 'data-id': s.id, 'data-state': s.status.state },
                  h('td', badge(s.status.state === 'active' ? 'ok' : s.status.state === 'pending' ? 'warn' : 'muted', s.status.state), h('div.muted.small', { title: s.id }, s.id.slice(0, 8))),
                  h('td', h('div.labels', s.matchers.map((m) => h('span.chip', matcherText(m))))),
                  h('td', when(s.startsAt)),
                  h('td', when(s.endsAt)),
                  h('td', s.createdBy),
                  h('td', s.comment),
                  h('td', s.status.state === 'expired' ? '' : `${n} alert${n === 1 ? '' : 's'}`),
                  h(
                    'td.actions',
                    s.status.state !== 'expired'
                      ? h('button.expire', { onclick: () => void act(`Silence ${s.id} expired`, `Could not expire silence ${s.id}`, () => callJson('DELETE', `api/v2/silence/${encodeURIComponent(s.id)}`)) }, 'Expire')
                      : null,
                  ),
                );
              }),
            ),
          ),
    );
  }

  function render() {
    const now = Date.now();
    const { firing, pending, muted } = countAlerts(data.groups);
    mount(updated, `updated ${formatTime(now)}`);
    mount(
      content,
      data.errors.map((e) => h('div.error', e)),
      data.notifier
        ? null
        : h('p.notice', "vigil's notifier is not configured (no notify: section): the rules' alerts are shown by name; acknowledgements and silences need the notifier."),
      h('p.summary', `${firing} firing, ${muted} silenced or inhibited, ${pending} pending, in ${data.groups.length} group${data.groups.length === 1 ? '' : 's'}`),
      data.groups.length === 0 ? h('p.muted.empty', 'No alerts are pending or firing.') : data.groups.map((g) => groupEl(g, now)),
      data.notifier ? silencesEl(now) : null,
    );
  }

  mount(
    root,
    h(
      'div.dash-head',
      h('h1', 'Alerts'),
      h('span.spacer'),
      updated,
      data.notifier ? h('label.variable', 'Acting as', userInput) : null,
      h('button.refresh', { onclick: () => void reload() }, 'Refresh'),
    ),
    status,
    content,
  );
  render();
  // Refreshes while nobody is filling in a form.
  const timer = setInterval(() => {
    if (!document.hidden && !root.querySelector('form')) void reload();
  }, REFRESH_MS);
  return () => clearInterval(timer);
}
