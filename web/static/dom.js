// dom.js — building elements from data. Every string becomes a text node or
// an attribute value, never markup.

/**
 * el creates an element. props: `class`, `text` (textContent), `data` (an
 * object of data-* values) and any other attribute by name (true sets it
 * empty; false, null and undefined leave it out). Children are nodes or
 * strings (appended as text).
 *
 * @param {string} tag
 * @param {Record<string, any>} [props]
 * @param {...(Node|string|null|undefined)} children
 * @returns {HTMLElement}
 */
export function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) {
      continue;
    }
    if (k.startsWith('on')) {
      throw new Error(`el: event handler attribute ${k}: use addEventListener`);
    }
    if (k === 'class') {
      e.className = v;
    } else if (k === 'text') {
      e.textContent = String(v);
    } else if (k === 'data') {
      for (const [dk, dv] of Object.entries(v)) {
        e.dataset[dk] = String(dv);
      }
    } else {
      e.setAttribute(k, v === true ? '' : String(v));
    }
  }
  e.append(...children.filter((c) => c !== null && c !== undefined));
  return e;
}

/** option creates an <option> with value and label, selected when selected. */
export function option(value, label, selected = false) {
  const o = el('option', { value, text: label });
  o.selected = selected;
  return o;
}

/**
 * fillSelect replaces the options of a <select> with one per name, keeping
 * the current choice when it is still there and otherwise choosing want.
 *
 * @param {HTMLSelectElement} select
 * @param {string[]} names
 * @param {string} [want] the choice when the current one is gone
 * @param {string} [emptyLabel] when set, a first option with value ""
 */
export function fillSelect(select, names, want = '', emptyLabel = undefined) {
  const keep = names.includes(select.value) ? select.value : want;
  select.replaceChildren();
  if (emptyLabel !== undefined) {
    select.append(option('', emptyLabel, keep === ''));
  }
  for (const n of names) {
    select.append(option(n, n, n === keep));
  }
}

/** str returns v when it is a string, else "". */
export function str(v) {
  return typeof v === 'string' ? v : '';
}

/** list returns v when it is an array, else []. */
export function list(v) {
  return Array.isArray(v) ? v : [];
}

// The state of <dialog id="confirm">: the resolve function of the question
// on screen, and whether the next close event is from our own close() (it
// comes a task later, possibly after the next question opened).
let answer = null;
let closingByUs = false;
let confirmWired = false;

function finish(value) {
  const resolve = answer;
  answer = null;
  const dlg = document.getElementById('confirm');
  if (dlg.open) {
    closingByUs = true;
    dlg.close();
  }
  if (resolve) {
    resolve(value);
  }
}

/**
 * confirmAction asks a yes/no question in the page's <dialog id="confirm">
 * and resolves to true when the user chose the OK button; Cancel and
 * Escape resolve to false.
 *
 * @param {string} message
 * @param {string} okLabel the label of the OK button, naming the action
 * @returns {Promise<boolean>}
 */
export function confirmAction(message, okLabel) {
  const dlg = document.getElementById('confirm');
  const ok = document.getElementById('confirm-ok');
  const cancel = document.getElementById('confirm-cancel');
  if (!confirmWired) {
    confirmWired = true;
    ok.addEventListener('click', () => finish(true));
    cancel.addEventListener('click', () => finish(false));
    dlg.addEventListener('close', () => {
      const ours = closingByUs;
      closingByUs = false;
      if (!ours && !dlg.open) {
        finish(false); // Escape
      }
    });
  }
  if (answer) {
    finish(false); // a question still open is answered "no"
  }
  document.getElementById('confirm-message').textContent = message;
  ok.textContent = okLabel;
  return new Promise((resolve) => {
    answer = resolve;
    dlg.showModal();
    cancel.focus(); // the safe answer is the default
  });
}

/**
 * busy disables the buttons of form while fn runs, so a slow save is not
 * sent twice, and returns what fn returns.
 *
 * @template T
 * @param {HTMLElement} form
 * @param {() => Promise<T>} fn
 * @returns {Promise<T>}
 */
export async function busy(form, fn) {
  const buttons = [...form.querySelectorAll('button')];
  for (const b of buttons) {
    b.disabled = true;
  }
  try {
    return await fn();
  } finally {
    for (const b of buttons) {
      b.disabled = false;
    }
  }
}
