/**
 * Maps every error a route can raise to the JSON body users see:
 * `{code, message, details?}` with a code from common/errors.ts. Validation
 * failures list every wrong field Marathon-style:
 * `{code: 'API_BAD_REQUEST', message: 'Object is not valid', details: [{path: '/instances', errors: ['must be >= 0']}]}`.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { StrataError, type ErrorCode } from '../../common/errors.ts';

interface ValidationItem {
  readonly instancePath: string;
  readonly message?: string;
  readonly keyword: string;
  readonly params: Record<string, unknown>;
}

function fieldPath(item: ValidationItem, context: string | undefined): string {
  let path = item.instancePath || '';
  if (item.keyword === 'required') path += `/${String(item.params['missingProperty'])}`;
  if (item.keyword === 'additionalProperties') path += `/${String(item.params['additionalProperty'])}`;
  const where = context && context !== 'body' ? `${context}:` : '';
  return `${where}${path || '/'}`;
}

function fieldMessage(item: ValidationItem): string {
  if (item.keyword === 'additionalProperties') return 'is not a known field';
  if (item.keyword === 'required') return 'is required';
  return item.message ?? 'is invalid';
}

/** Group Ajv errors by field: one entry per wrong field, all its problems listed. */
export function validationDetails(items: readonly ValidationItem[], context?: string): { path: string; errors: string[] }[] {
  const byPath = new Map<string, string[]>();
  for (const item of items) {
    // An `if`/`then` failure also reports the `then` keyword's own error (e.g. "required"), which names the field.
    if (item.keyword === 'if') continue;
    const path = fieldPath(item, context);
    const list = byPath.get(path) ?? [];
    const msg = fieldMessage(item);
    if (!list.includes(msg)) list.push(msg);
    byPath.set(path, list);
  }
  return [...byPath].map(([path, errors]) => ({ path, errors }));
}

const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'API_PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'API_UNSUPPORTED_MEDIA',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'API_BAD_REQUEST',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'API_BAD_REQUEST',
  FST_ERR_CTP_INVALID_JSON_BODY: 'API_BAD_REQUEST',
};

export function send(reply: FastifyReply, err: StrataError): FastifyReply {
  return reply.code(err.httpStatus).type('application/json').send(err.toJSON());
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError & { validationContext?: string }, request: FastifyRequest, reply: FastifyReply) => {
    if (error instanceof StrataError) {
      if (error.httpStatus >= 500) request.log.error({ err: error }, 'request failed');
      return send(reply, error);
    }
    if (error.validation) {
      const details = validationDetails(error.validation as ValidationItem[], error.validationContext);
      return send(reply, new StrataError('API_BAD_REQUEST', 'Object is not valid', { details }));
    }
    const mapped = error.code ? FASTIFY_CODES[error.code] : undefined;
    if (mapped) return send(reply, new StrataError(mapped, error.message));
    if (error instanceof SyntaxError) return send(reply, new StrataError('API_BAD_REQUEST', `request body is not valid JSON: ${error.message}`));
    if (typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500) {
      return send(reply, new StrataError('API_BAD_REQUEST', error.message));
    }
    request.log.error({ err: error }, 'unexpected error');
    return send(reply, new StrataError('API_INTERNAL', 'internal server error'));
  });
  app.setNotFoundHandler((request, reply) =>
    send(reply, new StrataError('API_NOT_FOUND', `no route for ${request.method} ${request.url.split('?')[0] ?? ''}`)),
  );
}
