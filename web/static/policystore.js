// policystore.js — the site policy as one document (docs/admin-api.md):
// loaded with its version, changed as a whole and saved with If-Match, so
// that two admins never overwrite each other unknowingly.

import { request, requestText, errorText, UNREACHABLE } from './api.js';
import { list, str } from './dom.js';

/** CONFLICT is shown when another admin saved the policy first (412). */
export const CONFLICT = '他の管理者がポリシーを変更したため、再読み込みしました。もう一度操作してください。 Someone else changed the policy; it was reloaded. Please make your change again.';

/**
 * normalise returns doc with every list present (the broker may send null
 * for an empty list), so the pages can iterate without checks.
 */
function normalise(doc) {
  const d = doc && typeof doc === 'object' ? doc : {};
  d.groups = list(d.groups).map((g) => ({ ...g, name: str(g.name), terminals: list(g.terminals) }));
  d.profiles = list(d.profiles).map((p) => ({
    ...p,
    name: str(p.name),
    mode: str(p.mode) || 'allowlist',
    groups: list(p.groups),
    roles: list(p.roles),
    rules: list(p.rules),
  }));
  d.default = str(d.default);
  d.emergencies = list(d.emergencies);
  d.blocked = list(d.blocked);
  return d;
}

/**
 * PolicyStore holds the last policy the broker sent and tells its
 * subscribers after every load. Changes are made on a copy and saved whole;
 * the store's own copy changes only by loading it again from the broker.
 */
export class PolicyStore {
  constructor() {
    this.doc = null;
    this.version = 0;
    this.etag = '';
    this.subscribers = [];
  }

  /** subscribe calls fn(doc) after every successful load. */
  subscribe(fn) {
    this.subscribers.push(fn);
  }

  /** profileNames lists the names of the profiles in order. */
  profileNames() {
    return this.doc ? this.doc.profiles.map((p) => p.name) : [];
  }

  /**
   * load fetches the policy. It resolves to "" on success and to the
   * message to show otherwise.
   *
   * @returns {Promise<string>}
   */
  async load() {
    let resp;
    try {
      resp = await request('GET', '/api/admin/policy');
    } catch {
      return UNREACHABLE;
    }
    if (resp.status !== 200) {
      return errorText(resp, `ポリシーを読み込めません (${resp.status})。 Cannot load the policy.`);
    }
    this.version = typeof resp.data.version === 'number' ? resp.data.version : 0;
    this.etag = resp.headers.get('ETag') || `"${this.version}"`;
    this.doc = normalise(resp.data.policy);
    for (const fn of this.subscribers) {
      fn(this.doc);
    }
    return '';
  }

  /**
   * save applies change to a copy of the document and saves the copy with
   * PUT /api/admin/policy. change may return a message (a string) to stop
   * before anything is sent. save resolves to "" when the broker took the
   * new policy (and it was loaded again), or to the message to show: the
   * broker's 400 message naming the bad rule, or CONFLICT after a 412 (the
   * store then holds the other admin's version).
   *
   * @param {(doc: object) => (string|void)} change
   * @returns {Promise<string>}
   */
  async save(change) {
    if (!this.doc) {
      return 'ポリシーが読み込まれていません。 The policy is not loaded.';
    }
    const doc = structuredClone(this.doc);
    const stop = change(doc);
    if (typeof stop === 'string' && stop !== '') {
      return stop;
    }
    let resp;
    try {
      resp = await request('PUT', '/api/admin/policy', doc, { 'If-Match': this.etag });
    } catch {
      return UNREACHABLE;
    }
    return this.settle(resp, '保存できませんでした', 'Could not save the policy.');
  }

  /**
   * importYAML replaces the whole policy with a YAML document
   * (POST /api/admin/policy/import), like save.
   *
   * @param {string} yaml
   * @returns {Promise<string>}
   */
  async importYAML(yaml) {
    let resp;
    try {
      resp = await requestText('POST', '/api/admin/policy/import', yaml, 'application/yaml', { 'If-Match': this.etag });
    } catch {
      return UNREACHABLE;
    }
    return this.settle(resp, '取り込めませんでした', 'Could not import the policy.');
  }

  /**
   * call sends one of the policy's own commands (block a host, start an
   * emergency profile, …) and loads the policy again after it succeeded.
   * It resolves to "" or to the message to show.
   *
   * @param {string} method
   * @param {string} path
   * @param {object} [body]
   * @returns {Promise<string>}
   */
  async call(method, path, body) {
    let resp;
    try {
      resp = await request(method, path, body);
    } catch {
      return UNREACHABLE;
    }
    if (resp.status < 200 || resp.status >= 300) {
      return errorText(resp, `失敗しました (${resp.status})。 The request failed.`);
    }
    const err = await this.load();
    return err;
  }

  // settle turns the answer to a save or import into "" or a message.
  async settle(resp, ja, en) {
    if (resp.status === 412) {
      const err = await this.load();
      return err === '' ? CONFLICT : `${CONFLICT}\n${err}`;
    }
    if (resp.status < 200 || resp.status >= 300) {
      return errorText(resp, `${ja} (${resp.status})。 ${en}`);
    }
    return this.load();
  }
}
