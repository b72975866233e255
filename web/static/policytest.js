// policytest.js — "test a URL" on the admin page: asks the broker whether a
// profile allows a URL and shows the answer and the rule or reason behind it.

import { request, errorText, UNREACHABLE } from './api.js';
import { el, fillSelect, busy, str } from './dom.js';

/** PolicyTest drives #test-form and #test-result. */
export class PolicyTest {
  /** @param {import('./policystore.js').PolicyStore} store */
  constructor(store) {
    this.store = store;
    this.form = document.getElementById('test-form');
    this.error = document.getElementById('test-error');
    this.result = document.getElementById('test-result');
    store.subscribe((doc) => fillSelect(this.form.elements.profile, doc.profiles.map((p) => p.name), doc.default));
    this.form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.test();
    });
  }

  async test() {
    const f = this.form.elements;
    this.error.textContent = '';
    const url = f.url.value.trim();
    if (url === '') {
      this.error.textContent = 'URL を入力してください。 Enter a URL.';
      return;
    }
    const profile = f.profile.value;
    let resp;
    try {
      resp = await busy(this.form, () => request('POST', '/api/admin/policy/test', { url, profile }));
    } catch {
      this.error.textContent = UNREACHABLE;
      return;
    }
    if (resp.status !== 200) {
      this.result.hidden = true;
      this.error.textContent = errorText(resp, `テストできませんでした (${resp.status})。 The test failed.`);
      return;
    }
    this.show(resp.data, url);
  }

  show(r, url) {
    const allow = r.allow === true;
    const rows = [
      ['URL', url],
      ['ホスト Host', str(r.host)],
      ['プロファイル Profile', str(r.profile)],
      ['ルール Rule', str(r.rule) || '—'],
      ['理由 Reason', str(r.reason) || '—'],
      ['信頼済み医療サイト Trusted', r.trusted === true ? '✓ はい yes' : 'いいえ no'],
      ['アップロード Uploads', r.uploads === true ? '✓ 可 allowed' : '不可 not allowed'],
    ];
    this.result.dataset.allow = String(allow);
    this.result.replaceChildren(
      el('p', { class: allow ? 'verdict ok' : 'verdict bad', text: allow ? '✓ 許可 Allowed' : '✕ 拒否 Denied' }),
      el('dl', {}, ...rows.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: v })])));
    this.result.hidden = false;
  }
}
