/**
 * Test harness: the browser steps of a login, as plain HTTP requests.
 * `browse(url, {fill, stopAt})` follows redirects by hand with a cookie jar,
 * submits each HTML form it lands on (hidden inputs kept, the named fields
 * filled from `fill`; a form posting back to the page is submitted once per
 * page) and stops at the first URL starting with `stopAt` without fetching
 * it, so the test hands that request to the server under test itself.
 * HTML is read with regular expressions: enough for the test IdPs'
 * (oidc-provider devInteractions, samlify's POST binding) simple forms.
 */

export interface BrowseResult {
  /** The URL that matched `stopAt` (GET), or the form post to it. */
  readonly url: string;
  readonly method: 'GET' | 'POST';
  /** For a POST: the form fields. */
  readonly form?: Record<string, string>;
  readonly cookies: Map<string, string>;
}

const decode = (s: string): string => s.replace(/&quot;/g, '"').replace(/&#x2F;/g, '/').replace(/&#x3D;/g, '=').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

/** The first form of an HTML page: its action and inputs. */
export function parseForm(html: string, base: string): { action: string; method: string; fields: Record<string, string> } | undefined {
  const form = /<form\b([^>]*)>([\s\S]*?)<\/form>/i.exec(html);
  if (!form) return undefined;
  const attr = (tag: string, name: string): string | undefined => {
    const m = new RegExp(`\\b${name}\\s*=\\s*("([^"]*)"|'([^']*)')`, 'i').exec(tag);
    return m ? decode(m[2] ?? m[3] ?? '') : undefined;
  };
  const fields: Record<string, string> = {};
  for (const input of form[2]!.matchAll(/<input\b[^>]*>/gi)) {
    const name = attr(input[0], 'name');
    if (name !== undefined) fields[name] = attr(input[0], 'value') ?? '';
  }
  return { action: new URL(attr(form[1]!, 'action') ?? base, base).href, method: (attr(form[1]!, 'method') ?? 'GET').toUpperCase(), fields };
}

export async function browse(start: string, options: { readonly fill?: Record<string, string>; readonly stopAt: string; readonly cookies?: Map<string, string>; readonly maxSteps?: number }): Promise<BrowseResult> {
  const jar = options.cookies ?? new Map<string, string>();
  let url = start;
  let method: 'GET' | 'POST' = 'GET';
  let body: URLSearchParams | undefined;
  for (let step = 0; step < (options.maxSteps ?? 30); step++) {
    if (url.startsWith(options.stopAt)) {
      return { url, method, ...(body ? { form: Object.fromEntries(body) } : {}), cookies: jar };
    }
    const host = new URL(url).host;
    const cookie = [...jar].filter(([k]) => k.startsWith(`${host} `)).map(([k, v]) => `${k.slice(host.length + 1)}=${v}`).join('; ');
    const res = await fetch(url, {
      method,
      redirect: 'manual',
      headers: { ...(cookie ? { cookie } : {}), ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
      ...(body ? { body: body.toString() } : {}),
    });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const eq = pair!.indexOf('=');
      jar.set(`${host} ${pair!.slice(0, eq).trim()}`, pair!.slice(eq + 1).trim());
    }
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location) {
      url = new URL(location, url).href;
      method = 'GET';
      body = undefined;
      await res.arrayBuffer();
      continue;
    }
    const html = await res.text();
    const form = parseForm(html, url);
    if (!form) throw new Error(`browse: ${res.status} at ${url} with no form and no redirect: ${html.slice(0, 300)}`);
    for (const [k, v] of Object.entries(options.fill ?? {})) if (k in form.fields) form.fields[k] = v;
    method = form.method === 'POST' ? 'POST' : 'GET';
    if (method === 'POST') {
      body = new URLSearchParams(form.fields);
      url = form.action;
    } else {
      const next = new URL(form.action);
      for (const [k, v] of Object.entries(form.fields)) next.searchParams.set(k, v);
      url = next.href;
      body = undefined;
    }
  }
  throw new Error(`browse: no ${options.stopAt} after ${options.maxSteps ?? 30} steps (last ${url})`);
}
