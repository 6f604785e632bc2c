// @ts-check
/** Pieces every page uses: error boxes, the confirmation dialog, small formatters. */
import { ApiError } from './api.js';
import { h } from './dom.js';

/**
 * An API error as users see it: its stable code, its message and, for a
 * validation error, every wrong field (Marathon's `details`).
 * @param {unknown} err
 */
export function errorBox(err) {
  const code = err instanceof ApiError ? err.code : 'UI_ERROR';
  const message = err instanceof Error ? err.message : String(err);
  const details = err instanceof ApiError && Array.isArray(err.details) ? err.details : [];
  return h('div', { class: 'error', role: 'alert' },
    h('strong', { class: 'code' }, code), ' ', h('span', { class: 'message' }, message),
    details.length === 0 ? null : h('ul', {}, details.map((/** @type {any} */ d) =>
      h('li', {}, h('code', {}, String(d?.path ?? '')), ': ', Array.isArray(d?.errors) ? d.errors.join('; ') : JSON.stringify(d)))),
  );
}

/**
 * A region that shows the last error of an action (or nothing). `show(err)`
 * fills it, `clear()` empties it.
 */
export function errorRegion() {
  const el = h('div', { class: 'errors' });
  return {
    el,
    /** @param {unknown} err */
    show(err) {
      el.replaceChildren(errorBox(err));
    },
    clear() {
      el.replaceChildren();
    },
  };
}

/**
 * A modal dialog: resolves true when the user confirms.
 * @param {string} title
 * @param {string} message
 * @param {string} confirmLabel
 * @returns {Promise<boolean>}
 */
export function confirmDialog(title, message, confirmLabel) {
  return new Promise((resolve) => {
    const dialog = h('dialog', { 'aria-labelledby': 'confirm-title', 'aria-describedby': 'confirm-message' },
      h('h2', { id: 'confirm-title' }, title),
      h('p', { id: 'confirm-message' }, message),
      h('form', { method: 'dialog' },
        h('button', { type: 'submit', value: 'cancel' }, 'Cancel'),
        ' ',
        h('button', { type: 'submit', value: 'confirm', class: 'danger' }, confirmLabel)),
    );
    dialog.addEventListener('close', () => {
      resolve(dialog.returnValue === 'confirm');
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

/**
 * A modal dialog asking for a number: resolves with it, or undefined when cancelled.
 * @param {string} title
 * @param {string} label
 * @param {number} value
 * @returns {Promise<number | undefined>}
 */
export function numberDialog(title, label, value) {
  return new Promise((resolve) => {
    const input = h('input', { id: 'number-dialog-input', type: 'number', min: 0, step: 1, required: true, value });
    const dialog = h('dialog', { 'aria-labelledby': 'number-title' },
      h('h2', { id: 'number-title' }, title),
      h('form', { method: 'dialog' },
        h('div', { class: 'field' }, h('label', { for: input.id }, label), input),
        h('button', { type: 'submit', value: 'cancel', formnovalidate: true }, 'Cancel'),
        ' ',
        h('button', { type: 'submit', value: 'ok' }, 'OK')),
    );
    dialog.addEventListener('close', () => {
      resolve(dialog.returnValue === 'ok' && input.value !== '' ? Number(input.value) : undefined);
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
    input.select();
  });
}

/** A short status line for success messages. @param {string} text */
export function notice(text) {
  return h('p', { class: 'notice', role: 'status' }, text);
}

/** @param {number} n */
export function fmt(n) {
  return Number.isInteger(n) ? String(n) : n.toFixed(2).replace(/\.?0+$/, '');
}

/** `#/services/<id>` for an app id. @param {string} id */
export function appHref(id) {
  return `#/services/${encodeURIComponent(id)}`;
}

/**
 * Fill `el` from one settled request: its rendering, or the error box (a
 * rejected request, or a rendering that threw on an unexpected answer).
 * Returns the rejection reason, if any, so the caller can count a failure.
 * @template T
 * @param {Element} el
 * @param {PromiseSettledResult<T>} result
 * @param {(value: T) => Node} render
 * @returns {unknown}
 */
export function section(el, result, render) {
  if (result.status === 'rejected') {
    el.replaceChildren(errorBox(result.reason));
    return result.reason;
  }
  try {
    el.replaceChildren(render(result.value));
    return undefined;
  } catch (err) {
    el.replaceChildren(errorBox(err));
    return err;
  }
}
