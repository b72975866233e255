// audit.js — the auditor's page (/audit, auditor role only): the integrity
// of the audit chain, the records searched by period, user, type, host and
// file hash (newest first, older ones on demand), the counts per user,
// host, file and type for the period (AUDIT-3), the CSV export, the
// transfer ledger, and the evidence bundle (IR-2).
//
// Records are shown as the broker sends them: the main fields in columns,
// and every field, including those this page does not know, in the record's
// details.

import { request, errorText, pageSession, UNREACHABLE } from './api.js';
import { el, str, list, fillSelect } from './dom.js';
import { formatSize } from './size.js';
import * as when from './when.js';
import { installPledgeGate } from './pledgegate.js';

const PAGE = 200; // records per request
const COUNT_ROWS = 50; // rows per count table
const DEFAULT_DAYS = 7; // the period searched at first

const TYPES = [
  'login', 'login_failed', 'lockout', 'logout', 'session_start', 'session_end',
  'navigation', 'deny', 'site_request', 'site_decision', 'transfer', 'clipboard', 'print',
  'policy_change', 'user_change', 'kill_switch', 'maintenance',
  'audit_recovered', 'audit_rotated', 'audit_dropped',
];

const $ = (id) => document.getElementById(id);
const message = $('audit-message');
const main = $('audit-main');
const filter = $('audit-filter');
const filterError = $('audit-filter-error');
const csv = $('audit-csv');
const counts = $('audit-counts');
const events = $('audit-events');
const eventsEmpty = $('audit-events-empty');
const eventsError = $('audit-events-error');
const eventsCount = $('audit-events-count');
const more = $('audit-more');
const ledger = $('audit-transfers');
const ledgerEmpty = $('audit-transfers-empty');
const ledgerError = $('audit-transfers-error');
const ledgerCount = $('audit-transfers-count');
const statusBox = $('audit-status');
const verdict = $('audit-status-verdict');
const facts = $('audit-status-facts');
const evidence = $('audit-evidence');
const evidenceLink = $('audit-evidence-link');
const evidenceError = $('audit-evidence-error');

// The search on screen: its query (without paging), the oldest record
// shown (for "load older"), and a generation so a slow answer to an older
// search is dropped.
let query = new URLSearchParams();
let oldest = 0;
let shown = 0;
let generation = 0;

async function get(path) {
  try {
    return await request('GET', path);
  } catch {
    return null;
  }
}

/** refuse shows why the page does not open, with the login link if login. */
function refuse(text, login = true) {
  message.textContent = text;
  $('audit-login').hidden = !login;
  main.hidden = true;
}

/** short shows the start of a hash; the whole one is its title. */
function hash(s, n = 16) {
  const h = str(s);
  return h === '' ? null : el('code', { class: 'hash', text: h.length > n ? `${h.slice(0, n)}…` : h, title: h });
}

/** details is a toggle with the whole record as JSON, so nothing is hidden. */
function details(v) {
  return el('details', { class: 'record' },
    el('summary', { text: 'JSON' }),
    el('pre', { text: JSON.stringify(v, null, 2) }));
}

/** lines puts the non-empty parts on their own lines. */
function lines(...parts) {
  const out = [];
  for (const p of parts) {
    if (p === null || p === undefined || p === '') {
      continue;
    }
    out.push(el('div', {}, p));
  }
  return out;
}

function labelled(label, value) {
  const v = typeof value === 'number' ? String(value) : str(value);
  return v === '' ? null : el('span', {}, el('span', { class: 'muted', text: `${label} ` }), v);
}

// ---- the filter ----

/**
 * params reads a form's period and fields into query parameters, or
 * returns a message naming the bad field.
 *
 * @param {HTMLFormElement} form
 * @param {string[]} names the text fields to take
 * @returns {URLSearchParams|string}
 */
function params(form, names) {
  const f = form.elements;
  const q = new URLSearchParams();
  for (const key of ['from', 'to']) {
    const v = when.rfc3339(f[key].value);
    if (v === null) {
      return `${key}: 日時が正しくありません。 not a valid date and time.`;
    }
    if (v !== '') {
      q.set(key, v);
    }
  }
  if (q.has('from') && q.has('to') && Date.parse(q.get('to')) < Date.parse(q.get('from'))) {
    return '終了が開始より前です。 "To" is before "From".';
  }
  for (const key of names) {
    const v = f[key].value.trim();
    if (v !== '') {
      q.set(key, key === 'sha256' || key === 'host' ? v.toLowerCase() : v);
    }
  }
  return q;
}

function withQuery(path, q) {
  const s = q.toString();
  return s === '' ? path : `${path}?${s}`;
}

async function search() {
  const q = params(filter, ['user', 'type', 'host', 'sha256']);
  if (typeof q === 'string') {
    filterError.textContent = q;
    return;
  }
  filterError.textContent = '';
  query = q;
  generation++;
  csv.href = withQuery('/api/audit/events.csv', q);
  const ledgerQuery = new URLSearchParams();
  for (const key of ['from', 'to', 'user', 'sha256']) {
    if (q.has(key)) {
      ledgerQuery.set(key, q.get(key));
    }
  }
  events.tBodies[0].replaceChildren();
  oldest = 0;
  shown = 0;
  await Promise.all([loadEvents(), loadCounts(), loadLedger(ledgerQuery)]);
}

// ---- records ----

async function loadEvents() {
  const gen = generation;
  const q = new URLSearchParams(query);
  q.set('limit', String(PAGE));
  if (oldest > 0) {
    q.set('before', String(oldest));
  }
  more.disabled = true;
  const resp = await get(withQuery('/api/audit/events', q));
  if (gen !== generation) {
    return;
  }
  more.disabled = false;
  if (!resp) {
    eventsError.textContent = UNREACHABLE;
    return;
  }
  if (resp.status !== 200) {
    eventsError.textContent = errorText(resp, `記録を読み込めません (${resp.status})。 Cannot load the records.`);
    return;
  }
  eventsError.textContent = '';
  const page = list(resp.data.events);
  const body = events.tBodies[0];
  for (const e of page) {
    body.append(eventRow(e));
    if (typeof e.seq === 'number' && (oldest === 0 || e.seq < oldest)) {
      oldest = e.seq;
    }
  }
  shown += page.length;
  eventsCount.textContent = resp.data.more === true ? `${shown}+` : String(shown);
  eventsEmpty.hidden = shown > 0;
  more.hidden = resp.data.more !== true || oldest <= 1;
}

function eventRow(e) {
  const t = e.transfer && typeof e.transfer === 'object' ? e.transfer : null;
  const type = str(e.type);
  return el('tr', { data: { seq: typeof e.seq === 'number' ? e.seq : '', type } },
    el('td', { class: 'time', text: when.showSeconds(e.time) }),
    el('td', {}, el('code', { text: type })),
    el('td', { text: str(e.user) }),
    el('td', { text: str(e.role) }),
    el('td', { text: str(e.terminal) }),
    el('td', { class: 'wrap' }, ...lines(str(e.host), str(e.url) !== '' ? el('code', { class: 'url', text: str(e.url) }) : null)),
    el('td', { class: 'wrap' }, ...outcome(e, t)),
    el('td', { class: 'wrap' }, ...fileCell(e, t)),
    el('td', {}, details(e)));
}

function outcome(e, t) {
  return lines(
    str(e.outcome),
    t ? [str(t.step), str(t.state)].filter((s) => s !== '').join(' · ') : '',
    str(e.reason),
    t ? str(t.reason) : '',
    t && str(t.verdict) !== '' ? labelled('検査 scan', [str(t.verdict), str(t.scanner)].filter((s) => s !== '').join(' · ')) : null,
    t ? labelled('承認者 approver', t.approver) : null,
    labelled('対象 target', e.target),
    labelled('変更 what', e.what),
    labelled('ルール rule', e.rule),
    labelled('コメント comment', e.comment || (t ? t.comment : '')),
  );
}

function fileCell(e, t) {
  if (t) {
    return lines(
      [str(t.direction), str(t.name)].filter((s) => s !== '').join(': '),
      [typeof t.size === 'number' && t.size > 0 ? formatSize(t.size) : '', str(t.contentType || t.content_type)].filter((s) => s !== '').join(' · '),
      hash(t.sha256),
    );
  }
  return lines(
    [str(e.direction), typeof e.length === 'number' && e.length > 0 ? `${e.length} bytes` : ''].filter((s) => s !== '').join(' · '),
    hash(e.sha256),
  );
}

// ---- counts ----

async function loadCounts() {
  const gen = generation;
  const resp = await get(withQuery('/api/audit/counts', query));
  if (gen !== generation) {
    return;
  }
  if (!resp || resp.status !== 200) {
    counts.replaceChildren(el('p', { class: 'error', text: resp ? errorText(resp, `件数を読み込めません (${resp.status})。 Cannot load the counts.`) : UNREACHABLE }));
    return;
  }
  const d = resp.data;
  counts.replaceChildren(
    countTable('ユーザー別 Per user', 'user', d.users),
    countTable('ホスト別 Per host', 'host', d.hosts),
    countTable('ファイル別 Per file (SHA-256)', 'sha256', d.files),
    countTable('種類別 Per type', 'type', d.types));
}

/** countTable lists name → count, most first; a name searches for itself. */
function countTable(title, key, data) {
  const rows = data && typeof data === 'object' ? Object.entries(data).filter(([, n]) => typeof n === 'number') : [];
  rows.sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const body = rows.slice(0, COUNT_ROWS).map(([name, n]) => el('tr', { data: { key, value: name } },
    el('td', { class: 'wrap' }, name === ''
      ? el('span', { class: 'muted', text: '(なし none)' })
      : el('button', { type: 'button', class: 'link', data: { filterKey: key, filterValue: name }, text: key === 'sha256' ? `${name.slice(0, 16)}…` : name, title: name })),
    el('td', { class: 'num', text: String(n) })));
  return el('div', { class: 'count-box', data: { count: key } },
    el('h3', { text: title }),
    el('table', { class: 'data' },
      el('thead', {}, el('tr', {}, el('th', { text: '名前 Name' }), el('th', { class: 'num', text: '件数 Count' }))),
      el('tbody', {}, ...body)),
    rows.length === 0 ? el('p', { class: 'muted', text: 'なし None.' }) : null,
    rows.length > COUNT_ROWS ? el('p', { class: 'muted', text: `上位 ${COUNT_ROWS} 件 The top ${COUNT_ROWS} of ${rows.length}.` }) : null);
}

counts.addEventListener('click', (ev) => {
  const b = ev.target.closest('[data-filter-key]');
  if (!b) {
    return;
  }
  const field = filter.elements[b.dataset.filterKey];
  if (field) {
    if (field instanceof HTMLSelectElement && ![...field.options].some((o) => o.value === b.dataset.filterValue)) {
      field.append(el('option', { value: b.dataset.filterValue, text: b.dataset.filterValue }));
    }
    field.value = b.dataset.filterValue;
    search();
  }
});

// ---- the ledger ----

async function loadLedger(q) {
  const gen = generation;
  const resp = await get(withQuery('/api/audit/transfers', q));
  if (gen !== generation) {
    return;
  }
  if (!resp || resp.status !== 200) {
    ledgerError.textContent = resp ? errorText(resp, `台帳を読み込めません (${resp.status})。 Cannot load the ledger.`) : UNREACHABLE;
    return;
  }
  ledgerError.textContent = '';
  const items = list(resp.data);
  const body = ledger.tBodies[0];
  body.replaceChildren(...items.map((t) => el('tr', { data: { id: str(t.id), state: str(t.state) } },
    el('td', { class: 'time', text: when.showSeconds(t.created) }),
    el('td', { text: str(t.direction) }),
    el('td', { text: str(t.user) }),
    el('td', { text: str(t.terminal) }),
    el('td', { class: 'wrap', text: str(t.name) }),
    el('td', { class: 'num', text: typeof t.size === 'number' ? formatSize(t.size) : '' }),
    el('td', { class: 'wrap', text: [str(t.class), str(t.mime)].filter((s) => s !== '').join(' · ') }),
    el('td', {}, hash(t.sha256)),
    el('td', {}, ...lines(str(t.state), when.isSet(t.expired) ? el('span', { class: 'badge', text: `削除 expired ${when.show(t.expired)}` }) : null)),
    el('td', { class: 'wrap' }, ...lines(str(t.reason), labelled('ルール rule', t.rule), labelled('検査 scan', t.scan), labelled('理由 justification', t.justification))),
    el('td', { class: 'wrap' }, ...lines(str(t.approver), labelled('コメント', t.comment))),
    el('td', { class: 'wrap' }, ...lines(
      str(t.source) !== '' ? el('code', { class: 'url', text: str(t.source) }) : null,
      str(t.destination) !== '' ? el('code', { class: 'url', text: str(t.destination) }) : null,
      ...list(t.sent).map((s) => labelled('送信 sent', `${str(s && s.destination)} (${str(s && s.by)})`)))),
    el('td', {}, details(t)))));
  ledgerEmpty.hidden = items.length > 0;
  ledgerCount.textContent = String(items.length);
}

// ---- chain status ----

async function loadStatus() {
  verdict.textContent = '検証中… Verifying…';
  verdict.className = 'verdict';
  facts.replaceChildren();
  delete statusBox.dataset.ok;
  const resp = await get('/api/audit/status');
  if (!resp || resp.status !== 200) {
    verdict.textContent = resp ? errorText(resp, `検証できません (${resp.status})。 Cannot verify the trail.`) : UNREACHABLE;
    verdict.className = 'verdict bad';
    return;
  }
  const d = resp.data;
  const ok = d.ok === true;
  statusBox.dataset.ok = String(ok);
  verdict.className = ok ? 'verdict ok' : 'verdict bad';
  verdict.textContent = ok
    ? '✓ 改ざんは見つかりませんでした Intact: the chain verifies'
    : '✗ 記録の連鎖が壊れています The chain is BROKEN';
  const head = d.head && typeof d.head === 'object' ? d.head : {};
  const cp = d.last_checkpoint && typeof d.last_checkpoint === 'object' ? d.last_checkpoint : null;
  const rows = [
    ['記録数 Records', typeof d.records === 'number' ? String(d.records) : ''],
    ['ファイル数 Files', typeof d.files === 'number' ? String(d.files) : ''],
    ['最新の番号 Head seq', typeof head.seq === 'number' ? String(head.seq) : ''],
    ['最新のハッシュ Head hash', str(head.hash)],
    ['チェックポイント Checkpoints', typeof d.checkpoints === 'number' ? String(d.checkpoints) : ''],
    ['最後のチェックポイント Last checkpoint', cp ? `seq ${cp.seq} (${str(cp.time)}, ${str(cp.reason)}, key ${str(cp.key_id)})` : ''],
    ['未署名の記録 Records after it', cp && typeof d.unsigned === 'number' ? String(d.unsigned) : ''],
    ['エラー Error', str(d.error)],
    ['注記 Note', str(d.note)],
  ];
  facts.replaceChildren(...rows.filter(([, v]) => v !== '').flatMap(([k, v]) => [
    el('dt', { text: k }),
    el('dd', {}, k.includes('hash') ? el('code', { text: v }) : v),
  ]));
}

// ---- evidence ----

function updateEvidenceLink() {
  const q = params(evidence, ['user']);
  if (typeof q === 'string') {
    evidenceError.textContent = q;
    return false;
  }
  evidenceError.textContent = '';
  evidenceLink.href = withQuery('/api/audit/evidence', q);
  return true;
}

evidence.addEventListener('input', updateEvidenceLink);
evidence.addEventListener('submit', (ev) => {
  ev.preventDefault();
  if (updateEvidenceLink()) {
    evidenceLink.click();
  }
});

// ---- start ----

filter.addEventListener('submit', (ev) => {
  ev.preventDefault();
  search();
});
$('audit-clear').addEventListener('click', () => {
  filter.reset();
  filter.elements.from.value = when.fromNow(-DEFAULT_DAYS);
  search();
});
more.addEventListener('click', () => loadEvents());
$('audit-verify').addEventListener('click', loadStatus);

async function load() {
  const session = await pageSession(['auditor'], {
    login: '監査担当者としてログインしてください。 Please log in as an auditor.',
    role: 'このページは監査担当者専用です。 This page is for auditors only.',
  }, refuse);
  if (session === null) {
    return;
  }
  fillSelect(filter.elements.type, TYPES, '', 'すべて All');
  const since = when.fromNow(-DEFAULT_DAYS);
  filter.elements.from.value = since;
  evidence.elements.from.value = since;
  updateEvidenceLink();
  message.hidden = true;
  main.hidden = false;
  await Promise.all([loadStatus(), search()]);
}

installPledgeGate();
load();
