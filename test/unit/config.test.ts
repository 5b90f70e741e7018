import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERROR_STATUS } from '../../hooks/errors.ts';
import { ConfigError, describeConfig, loadConfig } from '../../server/config.ts';

const README = fs.readFileSync(path.join(import.meta.dirname, '..', '..', 'README.md'), 'utf8');

describe('the README', () => {
  it('documents every configuration variable in its table', () => {
    const variables = Object.keys(loadConfig({})).filter((key) => /^[A-Z][A-Z0-9_]+$/.test(key));
    expect(variables.length).toBeGreaterThan(40);
    expect(variables.filter((name) => !README.includes(`| \`${name}\` |`))).toEqual([]);
  });

  it('documents every error code with its status', () => {
    const missing = Object.entries(ERROR_STATUS).filter(([code, status]) => !README.includes(`| \`${code}\` | ${status} |`));
    expect(missing).toEqual([]);
  });
});

describe('config', () => {
  it('has the documented defaults', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      HOST: '127.0.0.1',
      PORT: 1080,
      MAX_UPLOAD_BYTES: 50 * 1024 * 1024,
      MAX_PIXELS: 50_000_000,
      OUTPUT_LONG_EDGE: 2048,
      OUTPUT_FORMAT: 'webp',
      OUTPUT_QUALITY: 80,
      GATE_WINDOW_BYTES: 256 * 1024,
      TUS_STORE: 'file',
      PUBLIC_STORE: 'file',
      S3_CHECKSUM_MODE: 'WHEN_REQUIRED',
      ALLOWED_TYPES: ['image/jpeg', 'image/png', 'image/webp', 'image/gif', 'image/avif'],
    });
    expect(config.publicBaseUrl).toBe('http://127.0.0.1:1080/media');
    expect(config.dataDir.endsWith('/data')).toBe(true);
  });

  it('names every bad variable', () => {
    const attempt = () => loadConfig({ PORT: '99999', OUTPUT_FORMAT: 'bmp', MAX_PIXELS: 'lots', ALLOWED_TYPES: 'image/jpeg,image/tiff' });
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(/PORT="99999"/);
    expect(attempt).toThrow(/OUTPUT_FORMAT="bmp"/);
    expect(attempt).toThrow(/MAX_PIXELS="lots"/);
    expect(attempt).toThrow(/ALLOWED_TYPES/);
  });

  it('requires what a store choice needs', () => {
    expect(() => loadConfig({ TUS_STORE: 's3' })).toThrow(/S3_BUCKET: required when TUS_STORE=s3/);
    expect(() => loadConfig({ PUBLIC_STORE: 's3', PUBLIC_S3_BUCKET: 'media' })).toThrow(/PUBLIC_BASE_URL: required/);
    expect(() => loadConfig({ MAX_PIXELS: '100', MAX_TOTAL_PIXELS: '50' })).toThrow(/MAX_TOTAL_PIXELS/);
  });

  it('parses lists and switches', () => {
    const config = loadConfig({ ALLOWED_TYPES: 'image/png, image/webp', TRUST_PROXY: 'yes', PUBLIC_BASE_URL: 'https://cdn.example.com/m/' });
    expect(config.ALLOWED_TYPES).toEqual(['image/png', 'image/webp']);
    expect(config.TRUST_PROXY).toBe(true);
    expect(config.publicBaseUrl).toBe('https://cdn.example.com/m');
  });

  it('redacts secrets in what it prints', () => {
    const shown = describeConfig(loadConfig({ REDIS_URL: 'redis://user:hunter2@127.0.0.1:6379/0' }));
    expect(JSON.stringify(shown)).not.toContain('hunter2');
    expect(shown.REDIS_URL).toContain('redacted');
  });
});
