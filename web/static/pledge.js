// pledge.js — the usage pledge a user accepts before anything else
// (NOTICE-1), and again whenever an administrator changes its text
// (NOTICE-3). The broker enforces it: until the text in force is accepted,
// every API but the session, the pledge and logout answers 403 with
// pledgeRequired, and the stream is refused.

import { request, errorText, UNREACHABLE } from './api.js';

const CHANGED = '誓約文が変更されました。新しい誓約文をお読みください。 The pledge was changed: please read the new text.';

/**
 * Pledge drives the pledge's elements (#pledge, #pledge-agree,
 * #pledge-logout, #pledge-error): the viewer's #pledge-view and the staff
 * pages' #pledge-dialog.
 */
export class Pledge {
  /**
   * @param {() => void} onAgreed called after the broker recorded the consent
   * @param {() => void} onLogout called when the user declines
   */
  constructor(onAgreed, onLogout) {
    this.text = document.getElementById('pledge');
    this.error = document.getElementById('pledge-error');
    this.agree = document.getElementById('pledge-agree');
    this.version = '';
    this.agree.addEventListener('click', async () => {
      this.agree.disabled = true;
      this.error.textContent = '';
      try {
        // The version of the text shown: the broker refuses (409) when
        // the text changed meanwhile, so nobody accepts what they did not read.
        const resp = await request('POST', '/api/pledge', { version: this.version });
        if (resp.status >= 200 && resp.status < 300) {
          onAgreed();
          return;
        }
        if (resp.status === 409) {
          await this.reload();
          this.error.textContent = CHANGED;
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

  /**
   * prepare shows text (plain text with its newlines) whose version is
   * version (pledgeVersion of GET /api/session).
   */
  prepare(text, version) {
    this.text.textContent = typeof text === 'string' ? text : '';
    this.version = typeof version === 'string' ? version : '';
    this.error.textContent = '';
    this.agree.disabled = false;
  }

  /** reload shows the text in force, from GET /api/session. */
  async reload() {
    const resp = await request('GET', '/api/session');
    if (resp.status === 200) {
      this.prepare(resp.data.pledge, resp.data.pledgeVersion);
    }
  }

  focus() {
    this.agree.focus();
  }
}
