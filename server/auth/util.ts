/** Small helpers the jwt and hook modes share: checking a URL option, describing an error for the log. */
import { AuthConfigError } from './types.ts';

export function parseHttpUrl(value: string, option: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new AuthConfigError(`auth ${option} must be an absolute http(s) URL, got ${JSON.stringify(value)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new AuthConfigError(`auth ${option} must be an http or https URL, got ${JSON.stringify(value)}`);
  }
  return url;
}

/** An error's message and its causes', for the log. */
export function describe(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current !== undefined; depth++) {
    if (current instanceof Error) {
      const code = 'code' in current && typeof current.code === 'string' ? ` (${current.code})` : '';
      parts.push(`${current.message}${code}`);
      current = current.cause;
    } else {
      parts.push(String(current));
      current = undefined;
    }
  }
  return parts.join(': ');
}
