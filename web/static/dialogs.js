// dialogs.js — JavaScript dialogs of the remote page (alert, confirm,
// prompt, beforeunload), shown one at a time in the viewer's own modal
// <dialog id="dialog">, never with the terminal browser's own dialogs.

const TITLES = {
  alert: '',
  confirm: '',
  prompt: '',
  beforeunload: 'このページを離れますか? Leave this page? 入力した内容は失われる可能性があります。 Changes you made may not be saved.',
};

/** Dialogs queues `dialog` messages and answers them with `dialog` messages. */
export class Dialogs {
  /**
   * @param {object} o
   * @param {(msg: object) => boolean} o.send
   * @param {() => void} o.focusRemote gives keyboard focus back to the page
   */
  constructor({ send, focusRemote }) {
    this.send = send;
    this.focusRemote = focusRemote;
    this.queue = []; // waiting dialogs, the shown one first
    this.closing = false; // we called close() and its event is pending
    const $ = (id) => document.getElementById(id);
    this.dlg = $('dialog');
    this.form = $('dialog-form');
    this.origin = $('dialog-origin');
    this.message = $('dialog-message');
    this.input = $('dialog-input');
    this.ok = $('dialog-ok');
    this.cancel = $('dialog-cancel');

    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.answer(true);
    });
    this.cancel.addEventListener('click', () => this.answer(false));
    // Escape: cancel, or OK for an alert, which has no cancel.
    this.dlg.addEventListener('cancel', (e) => {
      e.preventDefault();
      this.dismiss();
    });
    // The browser may close a modal by itself (a second Escape): answer as
    // Escape would, so the remote page is not left waiting.
    // The close event comes a task later, so it may follow our own close()
    // or even a new showModal().
    this.dlg.addEventListener('close', () => {
      const ours = this.closing;
      this.closing = false;
      if (!ours && !this.dlg.open && this.queue.length > 0) {
        this.dismiss();
      }
    });
  }

  /** add queues a `dialog` message; a dialog already queued is ignored. */
  add(d) {
    if (typeof d.id !== 'string' || this.queue.some((q) => q.id === d.id)) {
      return;
    }
    this.queue.push({
      id: d.id,
      kind: ['alert', 'confirm', 'prompt', 'beforeunload'].includes(d.kind) ? d.kind : 'confirm',
      message: typeof d.message === 'string' ? d.message : '',
      def: typeof d.default === 'string' ? d.default : '',
      url: typeof d.url === 'string' ? d.url : '',
    });
    if (this.queue.length === 1) {
      this.show();
    }
  }

  /** remove drops a dialog that went away (`dialogClosed`). */
  remove(id) {
    const i = this.queue.findIndex((q) => q.id === id);
    if (i < 0) {
      return;
    }
    this.queue.splice(i, 1);
    if (i === 0) {
      this.show();
    }
  }

  /** clear drops every dialog, e.g. on reconnect: the server sends the pending ones again. */
  clear() {
    this.queue = [];
    this.show();
  }

  // dismiss answers the shown dialog as Escape does.
  dismiss() {
    const d = this.queue[0];
    this.answer(d !== undefined && d.kind === 'alert');
  }

  answer(accept) {
    const d = this.queue.shift();
    if (!d) {
      return;
    }
    const text = accept && d.kind === 'prompt' ? this.input.value : '';
    this.send({ type: 'dialog', id: d.id, accept, text });
    this.show();
  }

  // show displays the first queued dialog, or closes the modal when none.
  show() {
    const d = this.queue[0];
    if (!d) {
      if (this.dlg.open) {
        this.closing = true;
        this.dlg.close();
      }
      this.focusRemote();
      return;
    }
    this.origin.textContent = originText(d.url);
    const title = TITLES[d.kind];
    this.message.textContent = title && d.message ? `${title}\n\n${d.message}` : (title || d.message);
    this.input.hidden = d.kind !== 'prompt';
    this.input.value = d.def;
    this.cancel.hidden = d.kind === 'alert';
    if (!this.dlg.open) {
      this.dlg.showModal();
    }
    if (d.kind === 'prompt') {
      this.input.focus();
      this.input.select();
    } else {
      this.ok.focus();
    }
  }
}

// originText says which site opened the dialog, so a page cannot pose as
// the broker.
function originText(url) {
  try {
    const u = new URL(url);
    if (u.host) {
      return `${u.host} のメッセージ · ${u.host} says`;
    }
  } catch {
    // no URL
  }
  return 'ページのメッセージ · The page says';
}
