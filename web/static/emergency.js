// emergency.js — emergency profiles on the admin page (ALLOW-5): switch a
// terminal group to another profile with a reason until an expiry, and end
// one early.

import { el, fillSelect, busy, str, confirmAction } from './dom.js';
import * as when from './when.js';

const DEFAULT_HOURS = 8; // the expiry offered: one shift

/** Emergency drives #emergency-form and #emergencies. */
export class Emergency {
  /** @param {import('./policystore.js').PolicyStore} store */
  constructor(store) {
    this.store = store;
    const $ = (id) => document.getElementById(id);
    this.form = $('emergency-form');
    this.result = $('emergency-result');
    this.error = $('emergency-error');
    this.table = $('emergencies');
    this.empty = $('emergencies-empty');
    store.subscribe((doc) => this.render(doc));
    this.form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.start();
    });
    this.table.addEventListener('click', (ev) => {
      const b = ev.target.closest('[data-end-emergency]');
      if (b) {
        this.end(b.dataset.endEmergency);
      }
    });
  }

  /** shown offers a fresh default expiry when the section is opened. */
  shown() {
    if (this.form.elements.expires.value === '') {
      this.form.elements.expires.value = when.fromNow(0, DEFAULT_HOURS);
    }
  }

  render(doc) {
    const f = this.form.elements;
    fillSelect(f.group, doc.groups.map((g) => g.name));
    fillSelect(f.profile, doc.profiles.map((p) => p.name));
    const body = this.table.tBodies[0];
    body.replaceChildren();
    for (const em of doc.emergencies) {
      const group = str(em.group);
      body.append(el('tr', { data: { group } },
        el('td', { text: group }),
        el('td', { text: str(em.profile) }),
        el('td', { class: 'wrap', text: str(em.reason) }),
        el('td', { text: str(em.by) }),
        el('td', {}, when.show(em.expires), when.past(em.expires) ? el('span', { class: 'badge bad', text: '期限切れ expired' }) : null),
        el('td', { class: 'row-actions' },
          el('button', { type: 'button', class: 'danger', data: { endEmergency: group }, text: '今すぐ終了 End now' }))));
    }
    this.empty.hidden = doc.emergencies.length > 0;
  }

  async start() {
    const f = this.form.elements;
    this.error.textContent = '';
    this.result.textContent = '';
    const group = f.group.value;
    const profile = f.profile.value;
    const reason = f.reason.value.trim();
    const expires = when.rfc3339(f.expires.value);
    if (group === '' || profile === '') {
      this.error.textContent = 'グループとプロファイルを選んでください。 Choose a group and a profile.';
      return;
    }
    if (reason === '') {
      this.error.textContent = '理由を入力してください。 Enter a reason.';
      return;
    }
    if (!expires) {
      this.error.textContent = '期限を入力してください。 Enter an expiry.';
      return;
    }
    if (when.past(expires)) {
      this.error.textContent = '期限が過去です。 The expiry is in the past.';
      return;
    }
    if (!await confirmAction(`グループ「${group}」を「${profile}」に切り替えますか (${when.show(expires)} まで)? Switch group "${group}" to "${profile}" until ${when.show(expires)}?`, '切り替え Switch')) {
      return;
    }
    const err = await busy(this.form, () => this.store.call('POST', '/api/admin/emergency', { group, profile, reason, expires }));
    if (err !== '') {
      this.error.textContent = err;
      return;
    }
    f.reason.value = '';
    this.result.textContent = `グループ「${group}」を「${profile}」に切り替えました。 Group "${group}" now uses "${profile}".`;
  }

  async end(group) {
    this.error.textContent = '';
    this.result.textContent = '';
    if (!await confirmAction(`グループ「${group}」の緊急プロファイルを終了しますか? End the emergency profile of group "${group}"?`, '終了 End')) {
      return;
    }
    const err = await this.store.call('DELETE', '/api/admin/emergency/' + encodeURIComponent(group));
    if (err !== '') {
      this.error.textContent = err;
      return;
    }
    this.result.textContent = `グループ「${group}」の緊急プロファイルを終了しました。 The emergency profile of group "${group}" ended.`;
  }
}
