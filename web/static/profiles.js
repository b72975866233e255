// profiles.js — the "profiles and rules" section of the admin page: the
// list of profiles, the default profile, one profile's settings and its
// rules, and its transfer policy (read-only, transferpolicy.js). Every change is made on the whole policy document and saved with
// If-Match (policystore.js); the broker's message for a bad rule is shown
// next to the form that made the change.

import { el, fillSelect, list, str, confirmAction, busy } from './dom.js';
import * as when from './when.js';
import { renderTransferPolicy } from './transferpolicy.js';

const MODES = { allowlist: '許可リスト allowlist', denylist: '拒否リスト denylist' };

/** Profiles drives the #section-policy section. */
export class Profiles {
  /** @param {import('./policystore.js').PolicyStore} store */
  constructor(store) {
    this.store = store;
    this.selected = ''; // name of the profile shown on the right
    this.creating = false; // the profile form is for a new profile
    this.editingRule = null; // pattern of the rule in the rule form, or null for a new rule
    // profileDirty says the admin changed the profile form and has not saved
    // it: a reload (after saving a rule, say) leaves the form alone.
    this.profileDirty = false;

    const $ = (id) => document.getElementById(id);
    this.el = {
      status: $('policy-status'),
      list: $('policy-profiles'),
      newProfile: $('new-profile'),
      defaultForm: $('default-form'),
      defaultSelect: $('default-profile'),
      defaultError: $('default-error'),
      profileForm: $('profile-form'),
      profileTitle: $('profile-title'),
      profileGroups: $('profile-groups'),
      profileCancel: $('profile-cancel'),
      profileDelete: $('profile-delete'),
      profileError: $('profile-error'),
      rulesBox: $('rules-box'),
      rulesTitle: $('rules-title'),
      rules: $('rules'),
      rulesEmpty: $('rules-empty'),
      ruleForm: $('rule-form'),
      ruleFormTitle: $('rule-form-title'),
      ruleSubmit: $('rule-submit'),
      ruleCancel: $('rule-cancel'),
      ruleError: $('rule-error'),
      transfers: $('profile-transfers'),
      transfersTitle: $('profile-transfers-title'),
      transfersBody: $('profile-transfers-body'),
      staticBox: $('static-box'),
      staticRules: $('static-rules'),
    };
    const e = this.el;

    store.subscribe((doc) => this.render(doc));

    e.list.addEventListener('click', (ev) => {
      const row = ev.target.closest('[data-profile]');
      if (row) {
        this.select(row.dataset.profile);
      }
    });
    e.newProfile.addEventListener('click', () => this.startNewProfile());
    e.profileCancel.addEventListener('click', () => {
      this.creating = false;
      this.profileDirty = false;
      this.render(this.store.doc);
    });
    e.profileForm.addEventListener('input', () => {
      this.profileDirty = true;
    });
    e.profileForm.addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.saveProfile();
    });
    e.profileDelete.addEventListener('click', () => this.deleteProfile());
    e.defaultForm.addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.saveDefault();
    });
    e.ruleForm.addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.saveRule();
    });
    e.ruleCancel.addEventListener('click', () => this.resetRuleForm());
    e.rules.addEventListener('click', (ev) => {
      const edit = ev.target.closest('[data-edit-rule]');
      const del = ev.target.closest('[data-delete-rule]');
      if (edit) {
        this.editRule(edit.dataset.editRule);
      } else if (del) {
        this.deleteRule(del.dataset.deleteRule);
      }
    });
  }

  // ---- rendering ----

  profile(doc = this.store.doc) {
    return doc ? doc.profiles.find((p) => p.name === this.selected) : undefined;
  }

  render(doc) {
    if (!doc) {
      return;
    }
    if (!this.profile(doc)) {
      const names = doc.profiles.map((p) => p.name);
      this.selected = names.includes(doc.default) ? doc.default : (names[0] || '');
      this.profileDirty = false;
      this.resetRuleForm();
    }
    this.renderList(doc);
    this.renderStatic(doc);
    fillSelect(this.el.defaultSelect, doc.profiles.map((p) => p.name), doc.default);
    this.el.defaultSelect.value = doc.default;
    this.renderProfileForm(doc);
    this.renderRules();
  }

  /**
   * renderStatic shows the policy's read-only layer: the config file's
   * egress.allow (and the demo site), which every profile gets. The page
   * sends it back unchanged with every save; the broker refuses a change.
   */
  renderStatic(doc) {
    const rules = list(doc.static);
    const body = this.el.staticRules.tBodies[0];
    body.replaceChildren(...rules.map((r) => el('tr', {},
      el('td', { text: str(r.pattern) }),
      el('td', { text: str(r.source) }))));
    this.el.staticBox.hidden = rules.length === 0;
  }

  renderList(doc) {
    const body = this.el.list.tBodies[0];
    body.replaceChildren();
    for (const p of doc.profiles) {
      const isDefault = p.name === doc.default;
      const active = doc.emergencies.filter((em) => em.profile === p.name).map((em) => str(em.group));
      const name = el('button', { type: 'button', class: 'link', text: p.name });
      const row = el('tr', { data: { profile: p.name }, class: p.name === this.selected && !this.creating ? 'selected' : '' },
        el('td', {}, name,
          isDefault ? el('span', { class: 'badge', text: '既定 default' }) : null,
          active.length ? el('span', { class: 'badge warn', text: `緊急 emergency: ${active.join(', ')}` }) : null),
        el('td', { text: MODES[p.mode] || p.mode }),
        el('td', { text: p.groups.join(', ') }),
        el('td', { text: p.roles.join(', ') }),
        el('td', { class: 'num', text: String(p.rules.length) }));
      if (p.name === this.selected && !this.creating) {
        name.setAttribute('aria-current', 'true');
      }
      body.append(row);
    }
    if (doc.profiles.length === 0) {
      body.append(el('tr', {}, el('td', { colspan: 5, class: 'muted', text: 'プロファイルはありません。 No profiles.' })));
    }
  }

  renderProfileForm(doc) {
    const e = this.el;
    const f = e.profileForm.elements;
    const p = this.creating ? null : this.profile(doc);
    e.profileForm.hidden = !this.creating && !p;
    e.rulesBox.hidden = this.creating || !p;
    e.profileCancel.hidden = !this.creating;
    e.profileDelete.hidden = this.creating;
    if (this.profileDirty) {
      return; // keep what the admin is typing
    }
    e.profileTitle.textContent = this.creating ? '新しいプロファイル New profile' : `プロファイルの設定 Profile settings: ${p ? p.name : ''}`;
    f.name.value = p ? p.name : '';
    f.description.value = p ? str(p.description) : '';
    f.mode.value = p ? p.mode : 'allowlist';
    const groups = p ? p.groups : [];
    // Every defined group, and any group the profile names that is not defined.
    const names = [...doc.groups.map((g) => g.name), ...groups.filter((g) => !doc.groups.some((d) => d.name === g))];
    e.profileGroups.replaceChildren(...names.map((g) => {
      const box = el('input', { type: 'checkbox', name: 'groups', value: g });
      box.checked = groups.includes(g);
      return el('label', {}, box, ` ${g}`);
    }));
    if (names.length === 0) {
      e.profileGroups.append(el('span', { class: 'muted', text: '端末グループがありません。 No terminal groups defined.' }));
    }
    for (const box of e.profileForm.querySelectorAll('input[name="roles"]')) {
      box.checked = p ? p.roles.includes(box.value) : false;
    }
  }

  renderRules() {
    const e = this.el;
    const p = this.profile();
    const body = e.rules.tBodies[0];
    body.replaceChildren();
    e.transfers.hidden = this.creating || !p;
    if (!p) {
      return;
    }
    e.transfersTitle.textContent = `ファイル・クリップボードのポリシー Transfer policy: ${p.name}`;
    renderTransferPolicy(e.transfersBody, p.transfers);
    e.rulesTitle.textContent = `ルール Rules: ${p.name} (${MODES[p.mode] || p.mode})`;
    e.rulesEmpty.hidden = p.rules.length > 0;
    for (const r of p.rules) {
      const pattern = str(r.pattern);
      const expired = when.past(r.expires);
      const added = [str(r.added_by), when.isSet(r.added) ? when.show(r.added) : ''].filter((s) => s !== '').join(' · ');
      body.append(el('tr', { data: { pattern }, class: expired ? 'expired' : '' },
        el('td', {}, el('code', { text: pattern })),
        el('td', { class: 'flag', text: r.uploads ? '✓ 可 yes' : '—' }),
        el('td', { class: 'flag' }, r.trusted ? el('span', { class: 'badge trusted', text: '✓ 信頼済み trusted' }) : '—'),
        el('td', {}, when.show(r.expires, '無期限 never'),
          expired ? el('span', { class: 'badge bad', text: '期限切れ expired' }) : null),
        el('td', { class: 'wrap', text: str(r.note) }),
        el('td', { class: 'small', text: added }),
        el('td', { class: 'row-actions' },
          el('button', { type: 'button', data: { editRule: pattern }, text: '編集 Edit', 'aria-label': `編集 Edit ${pattern}` }),
          el('button', { type: 'button', class: 'danger', data: { deleteRule: pattern }, text: '削除 Delete', 'aria-label': `削除 Delete ${pattern}` }))));
    }
  }

  // ---- profiles ----

  select(name) {
    this.creating = false;
    this.profileDirty = false;
    this.selected = name;
    this.el.profileError.textContent = '';
    this.resetRuleForm();
    this.render(this.store.doc);
  }

  startNewProfile() {
    this.creating = true;
    this.profileDirty = false;
    this.el.profileError.textContent = '';
    this.el.status.textContent = '';
    this.render(this.store.doc);
    this.el.profileForm.elements.name.focus();
  }

  async saveProfile() {
    const e = this.el;
    const f = e.profileForm.elements;
    e.profileError.textContent = '';
    e.status.textContent = '';
    const name = f.name.value.trim();
    const fields = {
      name,
      description: f.description.value.trim(),
      mode: f.mode.value,
      groups: [...e.profileForm.querySelectorAll('input[name="groups"]:checked')].map((b) => b.value),
      roles: [...e.profileForm.querySelectorAll('input[name="roles"]:checked')].map((b) => b.value),
    };
    if (name === '') {
      e.profileError.textContent = '名前を入力してください。 Enter a name.';
      f.name.focus();
      return;
    }
    const creating = this.creating;
    const old = this.selected;
    const err = await busy(e.profileForm, () => this.store.save((doc) => {
      if (name !== old || creating) {
        if (doc.profiles.some((p) => p.name === name)) {
          return `プロファイル「${name}」は既にあります。 A profile named "${name}" already exists.`;
        }
      }
      if (creating) {
        doc.profiles.push({ ...fields, rules: [] });
        return '';
      }
      const p = doc.profiles.find((q) => q.name === old);
      if (!p) {
        return `プロファイル「${old}」はもうありません。 Profile "${old}" no longer exists.`;
      }
      Object.assign(p, fields);
      if (name !== old) {
        if (doc.default === old) {
          doc.default = name;
        }
        for (const em of doc.emergencies) {
          if (em.profile === old) {
            em.profile = name;
          }
        }
      }
      return '';
    }));
    if (err !== '') {
      e.profileError.textContent = err;
      return;
    }
    this.creating = false;
    this.profileDirty = false;
    this.selected = name;
    this.render(this.store.doc);
    e.status.textContent = `プロファイル「${name}」を保存しました。 Profile "${name}" saved.`;
  }

  async deleteProfile() {
    const e = this.el;
    const name = this.selected;
    e.profileError.textContent = '';
    e.status.textContent = '';
    if (this.store.doc && this.store.doc.default === name) {
      e.profileError.textContent = '既定のプロファイルは削除できません。先に別の既定を選んでください。 The default profile cannot be deleted; choose another default first.';
      return;
    }
    if (!await confirmAction(`プロファイル「${name}」とそのルールをすべて削除しますか? Delete profile "${name}" and all its rules?`, '削除 Delete')) {
      return;
    }
    const err = await busy(e.profileForm, () => this.store.save((doc) => {
      const i = doc.profiles.findIndex((p) => p.name === name);
      if (i < 0) {
        return `プロファイル「${name}」はもうありません。 Profile "${name}" no longer exists.`;
      }
      doc.profiles.splice(i, 1);
      return '';
    }));
    if (err !== '') {
      e.profileError.textContent = err;
      return;
    }
    e.status.textContent = `プロファイル「${name}」を削除しました。 Profile "${name}" deleted.`;
  }

  async saveDefault() {
    const e = this.el;
    const name = e.defaultSelect.value;
    e.defaultError.textContent = '';
    e.status.textContent = '';
    const err = await busy(e.defaultForm, () => this.store.save((doc) => {
      doc.default = name;
    }));
    if (err !== '') {
      e.defaultError.textContent = err;
      return;
    }
    e.status.textContent = `既定のプロファイルを「${name}」にしました。 The default profile is now "${name}".`;
  }

  // ---- rules ----

  resetRuleForm() {
    const e = this.el;
    this.editingRule = null;
    e.ruleForm.reset();
    e.ruleError.textContent = '';
    e.ruleFormTitle.textContent = 'ルールを追加 Add a rule';
    e.ruleSubmit.textContent = '追加 Add rule';
    e.ruleCancel.hidden = true;
  }

  editRule(pattern) {
    const p = this.profile();
    const r = p && p.rules.find((q) => q.pattern === pattern);
    if (!r) {
      return;
    }
    const e = this.el;
    const f = e.ruleForm.elements;
    this.editingRule = pattern;
    f.pattern.value = pattern;
    f.note.value = str(r.note);
    f.expires.value = when.inputValue(r.expires);
    f.uploads.checked = r.uploads === true;
    f.trusted.checked = r.trusted === true;
    e.ruleError.textContent = '';
    e.ruleFormTitle.textContent = `ルールを編集 Edit rule: ${pattern}`;
    e.ruleSubmit.textContent = '更新 Update rule';
    e.ruleCancel.hidden = false;
    f.pattern.focus();
  }

  async saveRule() {
    const e = this.el;
    const f = e.ruleForm.elements;
    e.ruleError.textContent = '';
    e.status.textContent = '';
    const pattern = f.pattern.value.trim();
    if (pattern === '') {
      e.ruleError.textContent = 'パターンを入力してください。 Enter a pattern.';
      f.pattern.focus();
      return;
    }
    const expires = when.rfc3339(f.expires.value);
    if (expires === null) {
      e.ruleError.textContent = '期限が正しい日時ではありません。 expires: not a valid date and time.';
      return;
    }
    const profileName = this.selected;
    const editing = this.editingRule;
    const err = await busy(e.ruleForm, () => this.store.save((doc) => {
      const p = doc.profiles.find((q) => q.name === profileName);
      if (!p) {
        return `プロファイル「${profileName}」はもうありません。 Profile "${profileName}" no longer exists.`;
      }
      if (pattern !== editing && p.rules.some((r) => r.pattern === pattern)) {
        return `「${pattern}」は既にこのプロファイルにあります。 "${pattern}" is already a rule of this profile.`;
      }
      let rule;
      if (editing === null) {
        rule = {};
        p.rules.push(rule);
      } else {
        rule = p.rules.find((r) => r.pattern === editing);
        if (!rule) {
          return `ルール「${editing}」はもうありません。 Rule "${editing}" no longer exists.`;
        }
      }
      // An expiry left as it was keeps its exact value.
      const unchanged = editing !== null && when.inputValue(rule.expires) === f.expires.value;
      rule.pattern = pattern;
      rule.uploads = f.uploads.checked;
      rule.trusted = f.trusted.checked;
      rule.note = f.note.value.trim();
      if (!unchanged) {
        if (expires === '') {
          delete rule.expires;
        } else {
          rule.expires = expires;
        }
      }
      return '';
    }));
    if (err !== '') {
      e.ruleError.textContent = err;
      return;
    }
    this.resetRuleForm();
    e.status.textContent = editing === null
      ? `ルール「${pattern}」を追加しました。 Rule "${pattern}" added.`
      : `ルール「${pattern}」を更新しました。 Rule "${pattern}" updated.`;
    f.pattern.focus();
  }

  async deleteRule(pattern) {
    const e = this.el;
    const profileName = this.selected;
    e.ruleError.textContent = '';
    e.status.textContent = '';
    const err = await this.store.save((doc) => {
      const p = doc.profiles.find((q) => q.name === profileName);
      const i = p ? p.rules.findIndex((r) => r.pattern === pattern) : -1;
      if (i < 0) {
        return `ルール「${pattern}」はもうありません。 Rule "${pattern}" no longer exists.`;
      }
      p.rules.splice(i, 1);
      return '';
    });
    if (err !== '') {
      e.ruleError.textContent = err;
      return;
    }
    if (this.editingRule === pattern) {
      this.resetRuleForm();
    }
    e.status.textContent = `ルール「${pattern}」を削除しました。 Rule "${pattern}" deleted.`;
  }
}
