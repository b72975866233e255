// transferpolicy.js — a profile's transfer policy (downloads, uploads,
// print, clipboard; docs/transfer.md) shown read-only on the admin page. It is
// edited in the YAML import/export tab; what a field left empty means is
// the broker's default, which this page does not repeat.

import { el, str, list } from './dom.js';

const ACTIONS = { allow: '許可 allow', off: '禁止 off', approve: '承認が必要 approve' };
const DEFAULT = '既定 default';

const FILES = [
  ['download', 'ダウンロード Download'],
  ['upload', 'アップロード Upload'],
  ['print', '印刷 Print'],
];
const TEXTS = [
  ['clipboard_to_terminal', 'コピー (ページ → 端末) Copy to terminal'],
  ['clipboard_to_remote', '貼り付け (端末 → ページ) Paste to page'],
];

function action(v) {
  const a = str(v);
  return a === '' ? DEFAULT : (ACTIONS[a] || a);
}

// limit shows a size as the broker writes it ("25MiB") or a plain number.
function limit(v, unit = '') {
  if (typeof v === 'number' && v > 0) {
    return `${v}${unit}`;
  }
  return str(v) !== '' ? str(v) : DEFAULT;
}

/** typeRules writes a direction's type rules: "pdf, image → 許可 allow". */
function typeRules(rules) {
  const items = list(rules).map((r) => el('li', { text: `${list(r && r.types).join(', ')} → ${action(r && r.action)}` }));
  return items.length > 0 ? el('ul', { class: 'rules-list' }, ...items) : DEFAULT;
}

/**
 * renderTransferPolicy fills container with the transfer policy of a
 * profile: its "transfers" object, or a note that it has none.
 *
 * @param {HTMLElement} container
 * @param {object|undefined} transfers
 */
export function renderTransferPolicy(container, transfers) {
  if (!transfers || typeof transfers !== 'object') {
    container.replaceChildren(el('p', { class: 'no-transfers', text: 'このプロファイルは既定のポリシーを使います。 This profile uses the default transfer policy.' }));
    return;
  }
  const rows = [];
  for (const [key, label] of FILES) {
    const p = transfers[key] && typeof transfers[key] === 'object' ? transfers[key] : {};
    rows.push(el('tr', { data: { direction: key } },
      el('th', { scope: 'row', text: label }),
      el('td', { text: action(p.action) }),
      el('td', {}, typeRules(p.types)),
      el('td', { text: limit(p.max_size) })));
  }
  for (const [key, label] of TEXTS) {
    const p = transfers[key] && typeof transfers[key] === 'object' ? transfers[key] : {};
    rows.push(el('tr', { data: { direction: key } },
      el('th', { scope: 'row', text: label }),
      el('td', { text: action(p.action) }),
      el('td', { text: '—' }),
      el('td', { text: limit(p.max_chars, ' 文字 chars') })));
  }
  container.replaceChildren(el('div', { class: 'table-wrap' },
    el('table', { class: 'data transfer-policy' },
      el('thead', {}, el('tr', {},
        el('th', { text: '方向 Direction' }),
        el('th', { text: '動作 Action (規則に当たらないとき otherwise)' }),
        el('th', { text: '種類ごとの規則 Type rules (上から順 in order)' }),
        el('th', { text: '上限 Limit' }))),
      el('tbody', {}, ...rows))));
}
