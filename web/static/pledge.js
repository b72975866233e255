// pledge.js — the pledge a clinician accepts once before the first session
// (NOTICE-1).

import { request, errorText, UNREACHABLE } from './api.js';

/** Pledge drives #pledge-view: the pledge text, "I agree" and "Log out". */
export class Pledge {
  /**
   * @param {() => void} onAgreed called after the broker recorded the consent
   * @param {() => void} onLogout called when the clinician declines
   */
  constructor(onAgreed, onLogout) {
    this.text = document.getElementById('pledge');
    this.error = document.getElementById('pledge-error');
    this.agree = document.getElementById('pledge-agree');
    this.agree.addEventListener('click', async () => {
      this.agree.disabled = true;
      this.error.textContent = '';
      try {
        const resp = await request('POST', '/api/pledge', {});
        if (resp.status >= 200 && resp.status < 300) {
          onAgreed();
          return;
        }
        this.error.textContent = errorText(resp, `記録できませんでした (${resp.status})。 Could not record your consent.`);
      } catch {
        this.error.textContent = UNREACHABLE;
      } finally {
        this.agree.disabled = false;
      }
    });
    document.getElementById('pledge-logout').addEventListener('click', onLogout);
  }

  /** prepare shows text (plain text with its newlines). */
  prepare(text) {
    this.text.textContent = typeof text === 'string' ? text : '';
    this.error.textContent = '';
    this.agree.disabled = false;
  }

  focus() {
    this.agree.focus();
  }
}
