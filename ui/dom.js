// @ts-check
/**
 * DOM building without innerHTML: every text goes in as a text node, so
 * nothing the API returns (app ids, log lines, error messages) can inject
 * markup.
 */

/**
 * @typedef {string | number | Node | null | undefined | false | ChildList} Child
 * @typedef {Child[]} ChildList nested lists are flattened
 * @typedef {Record<string, string | number | boolean | EventListener | undefined>} Attrs
 */

/**
 * An element: `h('button', {type: 'button', onclick: f}, 'Scale')`.
 * Attributes starting with `on` are listeners; `false`/`undefined` values are left out.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Attrs} [attrs]
 * @param {...Child} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') el.addEventListener(name.slice(2), value);
    else if (value === true) el.setAttribute(name, '');
    else el.setAttribute(name, String(value));
  }
  append(el, children);
  return el;
}

/**
 * @param {Node} parent
 * @param {Child[]} children
 */
export function append(parent, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(parent, child);
    else parent.appendChild(typeof child === 'string' || typeof child === 'number' ? document.createTextNode(String(child)) : child);
  }
}

/**
 * Replace everything inside `el`.
 * @param {Element} el
 * @param {...Child} children
 */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/**
 * A table with a caption and a header row; `rows` are arrays of cells.
 * @param {string} caption
 * @param {string[]} headers
 * @param {Child[][]} rows
 * @param {string} [empty] shown in one cell when there are no rows
 */
export function table(caption, headers, rows, empty = 'none') {
  return h('table', {},
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', {}, rows.length === 0
      ? h('tr', {}, h('td', { colspan: headers.length, class: 'empty' }, empty))
      : rows.map((cells) => h('tr', {}, cells.map((c) => h('td', {}, c))))),
  );
}

/**
 * A labelled form field; the label is tied to the control by id.
 * @param {string} label
 * @param {HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement} control must have an id
 */
export function field(label, control) {
  return h('div', { class: 'field' }, h('label', { for: control.id }, label), control);
}
