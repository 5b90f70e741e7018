/**
 * Checks real responses against the OpenAPI document (server/openapi.ts), so that the
 * document cannot drift from the server: a status the operation does not describe, a body
 * its schema refuses, a body where none is described (or none where one is), a Content-Type
 * it does not list or a required header left out, all throw.
 *
 * The schemas are JSON Schema 2020-12 (OpenAPI 3.1's dialect), checked with ajv's 2020 build
 * in strict mode, with ajv-formats. `default` responses are not used to excuse a status.
 */
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { OPTIONAL_BODY, openApiDocument, type JsonObject } from '../../server/openapi.ts';

const ROOT = 'urn:tusgate:openapi';
const METHODS = ['get', 'head', 'post', 'put', 'patch', 'delete', 'options'] as const;
/** OpenAPI keywords in Schema Objects that are annotations to JSON Schema (ajv knows `discriminator`). */
const OPENAPI_KEYWORDS = ['example', 'externalDocs', 'xml'];

export type HeaderBag = Headers | Record<string, string | string[] | number | undefined>;

export interface Operation {
  method: string;
  /** The path as the document names it, e.g. `/uploads/{id}`. */
  template: string;
  operation: JsonObject;
}

const isObject = (value: unknown): value is JsonObject => typeof value === 'object' && value !== null && !Array.isArray(value);

function asObject(value: unknown, what: string): JsonObject {
  if (!isObject(value)) throw new Error(`the OpenAPI document has no ${what}`);
  return value;
}

/** The schemas with their `#/components/schemas/…` references pointing into the one ajv resource that holds them. */
function rewriteRefs(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(rewriteRefs);
  if (!isObject(value)) return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, inner]) => {
      if (key === '$ref' && typeof inner === 'string' && inner.startsWith('#/components/schemas/')) {
        return [key, `${ROOT}#/$defs/${inner.slice('#/components/schemas/'.length)}`];
      }
      // ajv picks the oneOf branch by the discriminator (one branch's errors, not every branch's); it takes no mapping
      if (key === 'discriminator' && isObject(inner)) return [key, { propertyName: inner.propertyName }];
      return [key, rewriteRefs(inner)];
    }),
  );
}

function headerOf(headers: HeaderBag | undefined, name: string): string | undefined {
  if (!headers) return undefined;
  if (headers instanceof Headers) return headers.get(name) ?? undefined;
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() !== wanted || value === undefined) continue;
    return Array.isArray(value) ? value.join(', ') : String(value);
  }
  return undefined;
}

const mediaType = (contentType: string): string => contentType.split(';')[0]?.trim().toLowerCase() ?? '';
const isJsonType = (type: string): boolean => type === 'application/json' || type.endsWith('+json');

function describeErrors(errors: ErrorObject[] | null | undefined): string {
  return (errors ?? []).map((error) => `  ${error.instancePath || '(body)'} ${error.message ?? error.keyword} ${JSON.stringify(error.params)}`).join('\n');
}

export interface ResponseChecker {
  readonly document: JsonObject;
  /** The operation for a method and a path: a template of the document, or a concrete path or URL that matches one. */
  operation(method: string, path: string): Operation;
  /** True when the document describes this status for the operation. */
  describes(method: string, path: string, status: number): boolean;
  /**
   * Throws unless the document describes this response. `body` is the raw text (or Buffer),
   * or a value already parsed from JSON; null, undefined or '' for no body. With `headers`,
   * the Content-Type and the required headers are checked too. Returns the parsed JSON body.
   */
  checkResponse(method: string, path: string, status: number, body: unknown, headers?: HeaderBag): unknown;
  /** Compiles every schema of the document (components, parameters, headers, bodies) in strict mode; returns how many. */
  compileAll(): number;
}

export function createChecker(document: JsonObject = openApiDocument()): ResponseChecker {
  const paths = asObject(document.paths, 'paths');
  const components = asObject(document.components, 'components');
  const ajv = new Ajv2020({ strict: true, allErrors: true, allowUnionTypes: true, discriminator: true });
  addFormats.default(ajv);
  ajv.addVocabulary(OPENAPI_KEYWORDS);
  ajv.addSchema({ $id: ROOT, $defs: rewriteRefs(asObject(components.schemas, 'components.schemas')) });
  const compiled = new Map<string, ValidateFunction>();

  const compile = (key: string, schema: unknown): ValidateFunction => {
    let validate = compiled.get(key);
    if (!validate) {
      validate = ajv.compile(asObject(rewriteRefs(schema), `schema at ${key}`));
      compiled.set(key, validate);
    }
    return validate;
  };

  /** A concrete path's template: each `{param}` matches its parameter's pattern (without anchors), or one segment. */
  const templates = Object.entries(paths).map(([template, item]) => {
    const parameters = (asObject(item, `path ${template}`).parameters ?? []) as JsonObject[];
    const source = template
      .split(/(\{[^}]+\})/)
      .map((part) => {
        const name = /^\{([^}]+)\}$/.exec(part)?.[1];
        if (name === undefined) return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
        const schema = parameters.find((parameter) => parameter.name === name && parameter.in === 'path')?.schema;
        const pattern = isObject(schema) && typeof schema.pattern === 'string' ? schema.pattern.replace(/^\^/, '').replace(/\$$/, '') : '[^/]+';
        return `(?:${pattern})`;
      })
      .join('');
    return { template, match: new RegExp(`^${source}$`) };
  });

  const operation = (method: string, path: string): Operation => {
    const lower = method.toLowerCase();
    if (!(METHODS as readonly string[]).includes(lower)) throw new Error(`${method} is not an HTTP method the document can describe`);
    const bare = /^[a-z]+:\/\//i.test(path) ? new URL(path).pathname : path.split('?')[0] ?? path;
    const template = bare in paths ? bare : templates.find((candidate) => candidate.match.test(bare))?.template;
    if (template === undefined) throw new Error(`the OpenAPI document describes no path ${bare}`);
    const item = asObject(paths[template], `path ${template}`);
    const found = item[lower];
    if (!isObject(found)) throw new Error(`the OpenAPI document describes no ${method.toUpperCase()} ${template}`);
    return { method: method.toUpperCase(), template, operation: found };
  };

  const responseOf = (op: Operation, status: number): JsonObject | undefined => {
    const responses = asObject(op.operation.responses, `responses of ${op.method} ${op.template}`);
    const found = responses[String(status)] ?? responses[`${String(status)[0]}XX`];
    return isObject(found) ? found : undefined;
  };

  const checkResponse = (method: string, path: string, status: number, body: unknown, headers?: HeaderBag): unknown => {
    const op = operation(method, path);
    const where = `${op.method} ${op.template} ${status}`;
    const response = responseOf(op, status);
    if (!response) {
      const listed = Object.keys(asObject(op.operation.responses, 'responses')).join(', ');
      throw new Error(`${where}: the OpenAPI document does not describe this status (it lists ${listed}); body: ${String(JSON.stringify(body)).slice(0, 500)}`);
    }
    const text = typeof body === 'string' ? body : Buffer.isBuffer(body) ? body.toString('utf8') : undefined;
    const empty = body === null || body === undefined || text === '';
    const content = isObject(response.content) ? response.content : undefined;
    const contentType = headerOf(headers, 'content-type');

    for (const [name, spec] of Object.entries(isObject(response.headers) ? response.headers : {})) {
      if (!isObject(spec) || headers === undefined) continue;
      const value = headerOf(headers, name);
      if (value === undefined) {
        if (spec.required === true && !(op.method === 'HEAD' && name.toLowerCase() === 'content-type')) {
          throw new Error(`${where}: the required header ${name} is missing`);
        }
        continue;
      }
      if (spec.schema !== undefined) {
        const validate = compile(`${where} header ${name}`, spec.schema);
        if (!validate(value)) throw new Error(`${where}: header ${name}: ${JSON.stringify(value)} does not match the document:\n${describeErrors(validate.errors)}`);
      }
    }

    if (!content) {
      if (!empty && op.method !== 'HEAD') throw new Error(`${where}: the document describes no body, but one came: ${String(text ?? JSON.stringify(body)).slice(0, 500)}`);
      return undefined;
    }
    if (empty) {
      if (response[OPTIONAL_BODY] === true || op.method === 'HEAD') return undefined;
      throw new Error(`${where}: the document describes a body (${Object.keys(content).join(', ')}), but none came`);
    }
    const types = Object.keys(content);
    let type = types.find(isJsonType) ?? types[0] ?? '';
    if (contentType !== undefined) {
      const given = mediaType(contentType);
      if (!types.includes(given)) throw new Error(`${where}: Content-Type ${contentType} is not one the document lists (${types.join(', ')})`);
      type = given;
    }
    if (!isJsonType(type)) return body; // an image, Prometheus text: described by its type only
    let value: unknown = body;
    if (text !== undefined) {
      try {
        value = JSON.parse(text) as unknown;
      } catch {
        throw new Error(`${where}: the body is not JSON: ${text.slice(0, 500)}`);
      }
    }
    const media = asObject(content[type], `${where} ${type}`);
    if (media.schema === undefined) return value;
    const validate = compile(`${where} ${type}`, media.schema);
    if (!validate(value)) {
      throw new Error(`${where}: the body does not match the document:\n${describeErrors(validate.errors)}\nbody: ${JSON.stringify(value).slice(0, 1000)}`);
    }
    return value;
  };

  const compileAll = (): number => {
    let count = 0;
    const take = (key: string, schema: unknown) => {
      if (schema === undefined) return;
      compile(key, schema);
      count += 1;
    };
    for (const name of Object.keys(asObject(components.schemas, 'components.schemas'))) take(`schema ${name}`, { $ref: `#/components/schemas/${name}` });
    const operations: Array<[string, JsonObject, JsonObject[]]> = [];
    for (const [template, item] of Object.entries(paths)) {
      const pathItem = asObject(item, template);
      for (const method of METHODS) {
        const op = pathItem[method];
        if (isObject(op)) operations.push([`${method.toUpperCase()} ${template}`, op, (pathItem.parameters ?? []) as JsonObject[]]);
      }
    }
    for (const [name, item] of Object.entries(isObject(document.webhooks) ? document.webhooks : {})) {
      const post = asObject(item, `webhook ${name}`).post;
      if (isObject(post)) operations.push([`webhook ${name}`, post, []]);
    }
    for (const [where, op, shared] of operations) {
      for (const parameter of [...shared, ...((op.parameters ?? []) as JsonObject[])]) take(`${where} parameter ${String(parameter.name)}`, parameter.schema);
      const requestBody = isObject(op.requestBody) && isObject(op.requestBody.content) ? op.requestBody.content : {};
      for (const [type, media] of Object.entries(requestBody)) take(`${where} request ${type}`, isObject(media) ? media.schema : undefined);
      for (const [status, response] of Object.entries(asObject(op.responses, `${where} responses`))) {
        const res = asObject(response, `${where} ${status}`);
        for (const [name, spec] of Object.entries(isObject(res.headers) ? res.headers : {})) take(`${where} ${status} header ${name}`, isObject(spec) ? spec.schema : undefined);
        for (const [type, media] of Object.entries(isObject(res.content) ? res.content : {})) take(`${where} ${status} ${type}`, isObject(media) ? media.schema : undefined);
      }
    }
    return count;
  };

  return {
    document,
    operation,
    describes: (method, path, status) => responseOf(operation(method, path), status) !== undefined,
    checkResponse,
    compileAll,
  };
}

let shared: ResponseChecker | undefined;

/** checkResponse against the document the server serves (built here from the same code). */
export function checkResponse(method: string, pathTemplate: string, status: number, body: unknown, headers?: HeaderBag): unknown {
  shared ??= createChecker();
  return shared.checkResponse(method, pathTemplate, status, body, headers);
}
