// pledgegate.js — the pledge on the staff pages (admin, approvals, audit).
// When the broker refuses a request because the user has not accepted the
// pledge in force (403 pledgeRequired: a first login straight to this page,
// or an administrator changed the text), the pledge is shown in
// #pledge-dialog; once it is accepted the refused requests are sent again,
// so the page carries on where it was. Declining logs out.

import { request, onPledgeRequired } from './api.js';
import { Pledge } from './pledge.js';

/** installPledgeGate makes this page answer pledge refusals with the pledge. */
export function installPledgeGate() {
  const dialog = document.getElementById('pledge-dialog');
  // waiting is the answer every refused request waits for; null when the
  // pledge is not shown.
  let waiting = null;
  let settle = () => {};
  const done = (accepted) => {
    if (dialog.open) {
      dialog.close();
    }
    waiting = null;
    settle(accepted);
  };
  const pledge = new Pledge(() => done(true), async () => {
    try {
      await request('POST', '/api/logout', {});
    } catch {
      // The login page is the right place either way.
    }
    done(false);
    location.assign('/');
  });
  // The pledge must be answered: Escape does not dismiss it.
  dialog.addEventListener('cancel', (ev) => ev.preventDefault());

  async function show() {
    let resp = null;
    try {
      resp = await request('GET', '/api/session');
    } catch {
      // Unreachable: the refusal stands and the page says so.
    }
    if (resp === null || resp.status !== 200) {
      done(false);
      return;
    }
    pledge.prepare(resp.data.pledge, resp.data.pledgeVersion);
    dialog.showModal();
    pledge.focus();
  }

  onPledgeRequired(() => {
    if (waiting === null) {
      waiting = new Promise((resolve) => {
        settle = resolve;
      });
      show();
    }
    return waiting;
  });
}
