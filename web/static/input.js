// input.js — relays the clinician's mouse, wheel, keys and IME composition
// to the remote page.
//
// Keyboard focus lives on a transparent <textarea id="ime"> over the canvas,
// so the terminal's own IME (e.g. Microsoft IME for Japanese) works as on a
// local page and its candidate window appears near the remote caret:
//
//   - keydown/keyup outside a composition are relayed as `key` and
//     preventDefault()ed, so nothing is typed locally and Tab, Backspace,
//     Ctrl+A and friends act on the remote page only;
//   - while a composition is open (isComposing, or keyCode 229 "Process")
//     keys belong to the IME: nothing is relayed and nothing is prevented;
//   - compositionupdate becomes `ime update` (text and selection), and
//     compositionend becomes one `ime commit` (or `cancel` when empty);
//   - text inserted with no relayed key (an IME's direct input, an emoji
//     picker) becomes `ime commit`;
//   - the clipboard and print shortcuts are the viewer's own commands, not
//     keys: Ctrl/Cmd+C and +X (and Ctrl+Insert) ask the broker to copy the
//     page's selection, Ctrl/Cmd+P to print the page, both through the
//     broker's transfer policy. Ctrl/Cmd+V (and Shift+Insert) is neither
//     relayed nor prevented, so the browser fires `paste` on the textarea
//     with the terminal's clipboard, which goes to onPaste.
//
// Each character goes exactly once. A relayed keydown is preventDefault()ed,
// which in Chromium suppresses the character the key would type. Where the
// character still arrives (a separate "char" event, as some automation
// sends), beforeinput recognises it as the text of the key just relayed and
// drops it. Every non-composition edit is prevented in beforeinput, so
// nothing accumulates in the textarea.
//
// Pointer moves are coalesced to one message per animation frame (the
// latest wins) and wheel events to one per animation frame (deltas summed
// while mode, modifiers and roughly the point stay the same). Buttons, keys
// and IME commits go at once, in the task of their event, after any pending
// move and wheel, so their order is kept; composition updates go from the
// next task (scheduleUpdate). Nothing here waits for frames: decoding runs
// off the main thread (screen.js), and the screen flushes pending input
// before it draws a frame.

const BUTTONS = ['left', 'middle', 'right', 'back', 'forward'];
// Bits of MouseEvent.buttons, indexed by MouseEvent.button.
const BUTTON_BITS = [1, 4, 2, 8, 16];
const MAX_CLICKS = 3;
const CLICK_SLOP_PX = 5;
const CLICK_INTERVAL_MS = 500;
// Wheel events within one animation frame go as one message while the
// pointer stays within this distance (remote CSS px) of where they started.
const WHEEL_SLOP_PX = 16;

/** mods returns the protocol's modifier bitmask: Alt 1, Ctrl 2, Meta 4, Shift 8. */
function mods(e) {
  return (e.altKey ? 1 : 0) | (e.ctrlKey ? 2 : 0) | (e.metaKey ? 4 : 0) | (e.shiftKey ? 8 : 0);
}

/** lowestButton names the first pressed button in a buttons bitmask. */
function lowestButton(buttons) {
  for (let i = 0; i < BUTTONS.length; i++) {
    if (buttons & BUTTON_BITS[i]) {
      return BUTTONS[i];
    }
  }
  return 'none';
}

function composing(e) {
  return e.isComposing || e.keyCode === 229;
}

/** Input wires the canvas and the IME textarea to the stream. */
export class Input {
  /**
   * @param {object} o
   * @param {HTMLCanvasElement} o.canvas
   * @param {HTMLTextAreaElement} o.ime
   * @param {import('./screen.js').Screen} o.screen
   * @param {(msg: object) => boolean} o.send
   * @param {() => void} o.onActivity called on every relayed input
   * @param {(command: 'copy'|'print') => void} o.onCommand a copy or print
   *   shortcut was pressed
   * @param {(text: string) => void} o.onPaste the terminal pasted text
   */
  constructor({ canvas, ime, screen, send, onActivity, onCommand, onPaste }) {
    this.canvas = canvas;
    this.ime = ime;
    this.screen = screen;
    this.send = send;
    this.onActivity = onActivity;
    this.onCommand = onCommand;
    this.onPaste = onPaste;

    this.move = null; // pending coalesced move (latest wins)
    this.wheel = null; // pending wheel, deltas summed
    this.raf = 0;
    this.pressed = 0; // buttons we relayed as down and not yet up
    this.lastDown = { button: -1, t: 0, x: 0, y: 0, clicks: 0 };
    this.lastPoint = { x: 0, y: 0 }; // where the pointer was last relayed

    this.keys = new Map(); // relayed key downs not yet up, by key id
    this.typed = null; // {id, text}: the character the last relayed key types

    this.composing = false;
    this.compBase = 0; // where the composition starts in the textarea
    this.compText = '';
    this.updateDue = false;
    this.updateTimer = 0;
    this.sentUpdate = '';

    this.wirePointer();
    this.wireKeys();
    this.wireComposition();
    window.addEventListener('blur', () => this.releaseAll());
  }

  /** focus puts keyboard focus on the IME surface. */
  focus() {
    if (document.activeElement !== this.ime) {
      this.ime.focus({ preventScroll: true });
    }
  }

  /**
   * placeCaret moves the IME surface to the remote caret (viewport CSS px)
   * so the candidate window opens next to it.
   */
  placeCaret({ x, y, h }) {
    if (![x, y].every(Number.isFinite)) {
      return;
    }
    const p = this.screen.toLocal(x, y);
    const lineH = Math.max(12, Math.min(64, Number.isFinite(h) && h > 0 ? this.screen.toLocal(0, h).y : 16));
    const maxX = Math.max(0, this.screen.cssW - 40);
    const maxY = Math.max(0, this.screen.cssH - lineH);
    this.ime.style.left = Math.min(Math.max(0, p.x), maxX) + 'px';
    this.ime.style.top = Math.min(Math.max(0, p.y), maxY) + 'px';
    this.ime.style.height = lineH + 'px';
    this.ime.style.fontSize = Math.round(lineH * 0.8) + 'px';
  }

  /**
   * releaseAll lifts every key and button the remote page believes is
   * held: the tab lost focus and will not see their release.
   */
  releaseAll() {
    this.flush();
    this.releaseKeys();
    if (this.pressed) {
      const at = this.lastPoint;
      for (let i = 0; i < BUTTONS.length; i++) {
        if (this.pressed & BUTTON_BITS[i]) {
          this.pressed &= ~BUTTON_BITS[i];
          this.send({ type: 'mouse', action: 'up', x: at.x, y: at.y, button: BUTTONS[i], buttons: this.pressed, clicks: 1, mods: 0 });
        }
      }
    }
  }

  // ---- mouse and wheel ----

  // Buttons and moves come from mouse events, not pointer events: Chromium
  // gives the click count (detail) only to mouse events, and a second
  // button pressed during a drag fires its own mousedown. The listeners sit
  // on window so that a drag that leaves the canvas still ends with an up:
  // the browser keeps sending a pressed mouse's events to the page.
  wirePointer() {
    const c = this.canvas;
    c.addEventListener('mousedown', (e) => this.button(e, 'down'));
    window.addEventListener('mousedown', (e) => {
      if (e.target !== c && this.pressed) {
        this.button(e, 'down'); // another button during a drag off the canvas
      }
    }, true);
    window.addEventListener('mouseup', (e) => this.button(e, 'up'), true);
    window.addEventListener('mousemove', (e) => {
      if (e.target !== c && !this.pressed) {
        return; // over the toolbar, not dragging
      }
      const p = this.screen.toRemote(e.clientX, e.clientY);
      this.lastPoint = p;
      this.move = { type: 'mouse', action: 'move', x: p.x, y: p.y, button: lowestButton(e.buttons), buttons: e.buttons, clicks: 0, mods: mods(e) };
      this.schedule();
    }, true);
    // No local context menu, middle-button autoscroll or back/forward
    // navigation: those buttons belong to the remote page.
    c.addEventListener('auxclick', (e) => e.preventDefault());
    c.addEventListener('contextmenu', (e) => e.preventDefault());
    this.ime.addEventListener('contextmenu', (e) => e.preventDefault());
    c.addEventListener('wheel', (e) => {
      e.preventDefault();
      const p = this.screen.toRemote(e.clientX, e.clientY);
      const m = mods(e);
      const w = this.wheel;
      if (w && w.mode === e.deltaMode && w.mods === m &&
          Math.abs(p.x - w.x0) <= WHEEL_SLOP_PX && Math.abs(p.y - w.y0) <= WHEEL_SLOP_PX) {
        w.x = p.x;
        w.y = p.y;
        w.dx += e.deltaX;
        w.dy += e.deltaY;
      } else {
        this.flush();
        this.wheel = { type: 'wheel', x: p.x, y: p.y, dx: e.deltaX, dy: e.deltaY, mode: e.deltaMode, mods: m, x0: p.x, y0: p.y };
      }
      this.schedule();
      this.onActivity();
    }, { passive: false });
  }

  // button relays a mousedown or mouseup. An up is relayed only for a
  // button whose down was.
  button(e, action) {
    const bit = BUTTON_BITS[e.button];
    if (bit === undefined) {
      return;
    }
    if (action === 'down') {
      // Keep focus on the IME surface; no local text selection.
      e.preventDefault();
      this.finishComposition();
      this.focus();
    } else if (this.pressed & bit) {
      e.preventDefault();
    } else {
      return; // its down went elsewhere (the toolbar)
    }
    const p = this.screen.toRemote(e.clientX, e.clientY);
    this.lastPoint = p;
    const clicks = action === 'down' ? this.countClick(e, p) : Math.min(MAX_CLICKS, e.detail || this.lastDown.clicks);
    this.pressed = action === 'down' ? this.pressed | bit : this.pressed & ~bit;
    this.flush(); // a pending move goes first, in order
    this.send({ type: 'mouse', action, x: p.x, y: p.y, button: BUTTONS[e.button], buttons: e.buttons, clicks, mods: mods(e) });
    this.onActivity();
  }

  // countClick returns the click count of a down: the event's own detail
  // where the browser gives one, else counted like the OS does.
  countClick(e, p) {
    const d = this.lastDown;
    let clicks;
    if (e.detail > 0) {
      clicks = e.detail;
    } else {
      const near = Math.abs(p.x - d.x) <= CLICK_SLOP_PX && Math.abs(p.y - d.y) <= CLICK_SLOP_PX;
      const soon = e.timeStamp - d.t <= CLICK_INTERVAL_MS;
      clicks = d.button === e.button && near && soon ? d.clicks + 1 : 1;
    }
    clicks = Math.min(MAX_CLICKS, Math.max(1, clicks));
    this.lastDown = { button: e.button, t: e.timeStamp, x: p.x, y: p.y, clicks };
    return clicks;
  }

  schedule() {
    if (!this.raf) {
      this.raf = requestAnimationFrame(() => {
        this.raf = 0;
        this.flush();
      });
    }
  }

  /** flush sends the pending move and wheel now. */
  flush() {
    if (this.move) {
      const m = this.move;
      this.move = null;
      if (this.send(m)) {
        this.onActivity();
      }
    }
    if (this.wheel) {
      const { x, y, dx, dy, mode, mods: m } = this.wheel;
      this.wheel = null;
      const msg = { type: 'wheel', x, y, dx: Math.round(dx * 100) / 100, dy: Math.round(dy * 100) / 100, mode, mods: m };
      if (msg.dx !== 0 || msg.dy !== 0) {
        this.send(msg);
      }
    }
  }

  // ---- keys ----

  wireKeys() {
    const t = this.ime;
    t.addEventListener('keydown', (e) => {
      if (composing(e)) {
        return; // the IME's key
      }
      const command = shortcut(e);
      if (command === 'paste') {
        return; // the browser's paste follows, as a 'paste' event
      }
      e.preventDefault();
      if (command !== '') {
        if (!e.repeat) {
          this.flush();
          this.onCommand(command);
          this.onActivity();
        }
        return;
      }
      this.flush();
      const k = { key: e.key, code: e.code, keyCode: e.keyCode, location: e.location };
      const id = keyID(e);
      this.keys.set(id, k);
      this.typed = typesText(e) ? { id, text: e.key } : null;
      this.send({ type: 'key', action: 'down', ...k, mods: mods(e), repeat: e.repeat });
      this.onActivity();
    });
    t.addEventListener('keyup', (e) => {
      const id = keyID(e);
      const k = this.keys.get(id);
      if (!k) {
        // Its down was not relayed: the IME's key (e.g. the Enter that
        // confirmed a conversion), or pressed before focus came here.
        return;
      }
      e.preventDefault();
      this.keys.delete(id);
      if (this.typed && this.typed.id === id) {
        this.typed = null;
      }
      this.flush();
      this.send({ type: 'key', action: 'up', key: e.key, code: e.code, keyCode: e.keyCode, mods: mods(e), repeat: false, location: e.location });
    });
    // The clipboard and drag-and-drop are transfer paths with their own
    // policy: nothing crosses through the IME surface itself. Pasted text
    // goes to onPaste (which warns and asks the broker); dropped files are
    // taken by the upload dialog (upload.js).
    t.addEventListener('paste', (e) => {
      e.preventDefault();
      this.onPaste(e.clipboardData ? e.clipboardData.getData('text/plain') : '');
    });
    t.addEventListener('drop', (e) => e.preventDefault());
  }

  // ---- IME composition ----

  wireComposition() {
    const t = this.ime;
    t.addEventListener('compositionstart', (e) => {
      this.flush();
      this.composing = true;
      this.compBase = Math.min(t.selectionStart, t.selectionEnd);
      this.compText = e.data || '';
      this.sentUpdate = '';
      this.updateDue = this.compText !== '';
      if (this.updateDue) {
        this.scheduleUpdate();
      }
      this.onActivity();
    });
    t.addEventListener('compositionupdate', (e) => {
      this.composing = true;
      this.compText = e.data || '';
      this.updateDue = true;
      this.scheduleUpdate();
    });
    t.addEventListener('compositionend', (e) => {
      const text = e.data || '';
      const hadUpdate = this.sentUpdate !== '';
      this.composing = false;
      this.updateDue = false;
      this.sentUpdate = '';
      this.compText = '';
      if (text !== '') {
        if (!hadUpdate) {
          // Composed and committed before any update went (a fast IME, or
          // one task): the remote page still gets a composition, as a
          // local one would, not just the text.
          this.send({ type: 'ime', action: 'update', text, selStart: text.length, selEnd: text.length });
        }
        this.send({ type: 'ime', action: 'commit', text, selStart: text.length, selEnd: text.length });
      } else if (hadUpdate) {
        this.send({ type: 'ime', action: 'cancel', text: '', selStart: 0, selEnd: 0 });
      }
      this.onActivity();
      setTimeout(() => this.clearSurface(), 0);
    });
    t.addEventListener('beforeinput', (e) => {
      if (this.composing || e.isComposing || e.inputType === 'insertCompositionText') {
        return; // the IME's own text, shown and sent as a composition
      }
      // Any other edit stays off the textarea: keys went as keys.
      e.preventDefault();
      if (e.inputType !== 'insertText' || !e.data) {
        return;
      }
      if (this.typed && this.typed.text === e.data) {
        this.typed = null; // the character of the key just relayed
        return;
      }
      // Text that no relayed key produced: an IME's direct input, an emoji
      // picker, a handwriting pad.
      this.send({ type: 'ime', action: 'commit', text: e.data, selStart: e.data.length, selEnd: e.data.length });
      this.onActivity();
    });
    t.addEventListener('input', (e) => {
      if (this.composing || e.isComposing) {
        return; // the update goes from scheduleUpdate's task
      }
      this.clearSurface();
    });
    t.addEventListener('blur', () => {
      // A composition cut short by losing focus ends with compositionend;
      // held keys are released.
      this.releaseKeys();
    });
  }

  // scheduleUpdate sends the composition as `ime update` from the next
  // task, not from the event that changed it, for two reasons: the
  // textarea's selection is only updated after compositionupdate, and a
  // commit fires compositionupdate and input with the final text and then
  // compositionend in one task. Sent at once, that final update would reach
  // the remote page ahead of the commit, and the commit would wait behind a
  // composition (and its caret query) that nobody needs: a display frame on
  // every commit.
  scheduleUpdate() {
    if (!this.updateTimer) {
      this.updateTimer = setTimeout(() => {
        this.updateTimer = 0;
        this.sendUpdate();
      }, 0);
    }
  }

  sendUpdate() {
    if (!this.updateDue || !this.composing) {
      return;
    }
    this.updateDue = false;
    const text = this.compText;
    const t = this.ime;
    let s = t.selectionStart - this.compBase;
    let e = t.selectionEnd - this.compBase;
    if (!(s >= 0 && s <= text.length)) {
      s = text.length;
    }
    if (!(e >= s && e <= text.length)) {
      e = s;
    }
    const key = `${s}:${e}:${text}`;
    if (key === this.sentUpdate) {
      return;
    }
    this.sentUpdate = key;
    this.send({ type: 'ime', action: 'update', text, selStart: s, selEnd: e });
  }

  // finishComposition commits an open composition before a click, as a
  // local page would: the IME ends it when the field loses focus.
  finishComposition() {
    if (this.composing) {
      this.ime.blur();
      this.ime.focus({ preventScroll: true });
    }
  }

  clearSurface() {
    if (!this.composing && this.ime.value !== '') {
      this.ime.value = '';
    }
  }

  releaseKeys() {
    for (const k of this.keys.values()) {
      this.send({ type: 'key', action: 'up', key: k.key, code: k.code, keyCode: k.keyCode, mods: 0, repeat: false, location: k.location });
    }
    this.keys.clear();
  }
}

// typesText reports whether a relayed key types its key value as text.
function typesText(e) {
  return !e.ctrlKey && !e.metaKey && [...e.key].length === 1;
}

/**
 * shortcut names the viewer command a key press stands for: 'copy', 'paste',
 * 'print', or '' for a key that goes to the page. Shift+Ctrl+C and
 * Shift+Ctrl+P stay keys (pages use them); Shift+Ctrl+V is paste as plain
 * text, which is the only kind the viewer pastes anyway.
 */
export function shortcut(e) {
  if (e.altKey) {
    return '';
  }
  if (e.key === 'Insert') {
    if (e.shiftKey && !e.ctrlKey && !e.metaKey) {
      return 'paste';
    }
    return e.ctrlKey && !e.shiftKey ? 'copy' : '';
  }
  if (!e.ctrlKey && !e.metaKey) {
    return '';
  }
  switch (letter(e)) {
    case 'v':
      return 'paste';
    case 'c':
    case 'x':
      return e.shiftKey ? '' : 'copy';
    case 'p':
      return e.shiftKey ? '' : 'print';
    default:
      return '';
  }
}

// letter is the Latin letter of a key, from its value or, on a non-Latin
// layout, from its physical position.
function letter(e) {
  if (/^[a-z]$/i.test(e.key)) {
    return e.key.toLowerCase();
  }
  return /^Key[A-Z]$/.test(e.code) ? e.code.slice(3).toLowerCase() : '';
}

// keyID names a physical key so that its up matches its down even when the
// modifiers changed the key value in between ("a" down, "A" up).
function keyID(e) {
  if (e.code) {
    return e.code;
  }
  return e.keyCode ? `keyCode:${e.keyCode}` : `key:${e.key}`;
}
