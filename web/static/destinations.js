// destinations.js — departmental destinations on the admin page: folders on
// the broker's server that clinicians may send released files to
// (docs/transfer.md). They are not part of the policy document; each change
// is its own request, and the broker checks the folder (absolute, existing,
// writable, not the quarantine) and says what is wrong.

import { request, errorText, UNREACHABLE } from './api.js';
import { el, str, list, busy, confirmAction } from './dom.js';
import * as when from './when.js';

/** Destinations drives #section-destinations. */
export class Destinations {
  constructor() {
    const $ = (id) => document.getElementById(id);
    this.table = $('destinations-table');
    this.empty = $('destinations-empty');
    this.listError = $('destinations-error');
    this.form = $('destination-form');
    this.result = $('destination-result');
    this.error = $('destination-error');
    this.form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.add();
    });
    this.table.addEventListener('click', (ev) => {
      const b = ev.target.closest('[data-remove-destination]');
      if (b) {
        this.remove(b.dataset.removeDestination);
      }
    });
  }

  /** shown loads the list when the section is opened. */
  shown() {
    this.load();
  }

  async load() {
    let resp;
    try {
      resp = await request('GET', '/api/admin/destinations');
    } catch {
      this.listError.textContent = UNREACHABLE;
      return;
    }
    if (resp.status !== 200) {
      this.listError.textContent = errorText(resp, `送信先を読み込めません (${resp.status})。 Cannot load the destinations.`);
      return;
    }
    this.listError.textContent = '';
    const rows = list(resp.data);
    const body = this.table.tBodies[0];
    body.replaceChildren();
    for (const d of rows) {
      const name = str(d.name);
      const added = [str(d.addedBy), when.isSet(d.added) ? when.show(d.added) : ''].filter((s) => s !== '').join(' · ');
      body.append(el('tr', { data: { destination: name } },
        el('td', {}, el('code', { text: name })),
        el('td', { class: 'wrap', text: str(d.description) }),
        el('td', {}, el('code', { text: str(d.dir) })),
        el('td', { class: 'small', text: added }),
        el('td', { class: 'row-actions' },
          el('button', { type: 'button', class: 'danger', data: { removeDestination: name }, text: '削除 Remove', 'aria-label': `削除 Remove ${name}` }))));
    }
    this.empty.hidden = rows.length > 0;
  }

  async add() {
    const f = this.form.elements;
    this.error.textContent = '';
    this.result.textContent = '';
    const body = { name: f.name.value.trim(), description: f.description.value.trim(), dir: f.dir.value.trim() };
    if (body.name === '' || body.dir === '') {
      this.error.textContent = '名前とフォルダーを入力してください。 Enter a name and a folder.';
      return;
    }
    const resp = await busy(this.form, async () => {
      try {
        return await request('POST', '/api/admin/destinations', body);
      } catch {
        return null;
      }
    });
    if (!resp) {
      this.error.textContent = UNREACHABLE;
      return;
    }
    if (resp.status < 200 || resp.status >= 300) {
      this.error.textContent = errorText(resp, `追加できませんでした (${resp.status})。 The destination could not be added.`);
      return;
    }
    this.form.reset();
    this.result.textContent = `送信先「${body.name}」を追加しました。 Destination "${body.name}" added.`;
    this.load();
  }

  async remove(name) {
    this.error.textContent = '';
    this.result.textContent = '';
    if (!await confirmAction(`送信先「${name}」を削除しますか? 送信済みのファイルはフォルダーに残ります。 Remove destination "${name}"? Files already sent stay in its folder.`, '削除 Remove')) {
      return;
    }
    let resp;
    try {
      resp = await request('DELETE', '/api/admin/destinations/' + encodeURIComponent(name));
    } catch {
      this.listError.textContent = UNREACHABLE;
      return;
    }
    if (resp.status < 200 || resp.status >= 300) {
      this.listError.textContent = errorText(resp, `削除できませんでした (${resp.status})。 The destination could not be removed.`);
      return;
    }
    this.result.textContent = `送信先「${name}」を削除しました。 Destination "${name}" removed.`;
    this.load();
  }
}
