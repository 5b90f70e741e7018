/**
 * Creation-time rules: triage of the client's filename / filetype hints, and the declared
 * Upload-Length against MAX_UPLOAD_BYTES.
 */
import { describe, expect, it } from 'vitest';
import type { Refusal } from '../../hooks/errors.ts';
import { type Policy, allowedExtensions, checkDeclaredLength, triage } from '../../hooks/policy.ts';
import { loadConfig, policyOf } from '../../server/config.ts';

function policyFrom(env: Record<string, string> = {}): Policy {
  return policyOf(loadConfig(env));
}

const policy = policyFrom();
const ALL_ALLOWED = 'Allowed types: image/jpeg, image/png, image/webp, image/gif, image/avif.';

function summary(refusal: Refusal | undefined): { code: string; status: number; message: string } | undefined {
  return refusal && { code: refusal.code, status: refusal.status_code, message: refusal.message };
}

describe('triage: filename', () => {
  it.each(['setup.exe', 'index.html', 'page.htm', 'logo.svg', 'paper.pdf', 'IMG_0001.heic', 'photo.HEIF', 'scan.tiff', 'notes.txt', 'run.sh', 'archive.zip'])(
    '%s: E_TYPE_NOT_ALLOWED (415), naming the extension and the allowed types',
    (filename) => {
      const refusal = summary(triage({ filename }, policy));
      const ext = filename.slice(filename.lastIndexOf('.') + 1).toLowerCase();
      expect(refusal).toEqual({ code: 'E_TYPE_NOT_ALLOWED', status: 415, message: `A .${ext} file is not an allowed image. ${ALL_ALLOWED}` });
    },
  );

  it.each([
    'photo.jpg',
    'PHOTO.JPEG',
    'photo.jpe',
    'picture.png',
    'anim.apng',
    'clip.gif',
    'image.webp',
    'image.avif',
    'no-extension',
    '.hidden',
    'unknown.ext123',
    'holiday.2024',
    'photo.exe.jpg',
  ])('%s: passes (the bytes decide)', (filename) => {
    expect(triage({ filename }, policy)).toBeUndefined();
  });

  it('looks at the last extension of the last path component', () => {
    expect(triage({ filename: 'photo.jpg.exe' }, policy)?.code).toBe('E_TYPE_NOT_ALLOWED');
    expect(triage({ filename: 'C:\\Users\\me\\evil.exe' }, policy)?.code).toBe('E_TYPE_NOT_ALLOWED');
    expect(triage({ filename: 'uploads/dir.exe/photo' }, policy)).toBeUndefined();
  });

  it('reads `name` when `filename` is absent, and passes absent or null values', () => {
    expect(triage({ name: 'payload.html' }, policy)?.code).toBe('E_TYPE_NOT_ALLOWED');
    expect(triage({ filename: null }, policy)).toBeUndefined();
    expect(triage({}, policy)).toBeUndefined();
    expect(triage(undefined, policy)).toBeUndefined();
  });

  it('an image extension of a type left out of ALLOWED_TYPES is refused', () => {
    const jpegOnly = policyFrom({ ALLOWED_TYPES: 'image/jpeg' });
    expect(summary(triage({ filename: 'a.png' }, jpegOnly))).toEqual({
      code: 'E_TYPE_NOT_ALLOWED',
      status: 415,
      message: 'A .png file is not an allowed image. Allowed types: image/jpeg.',
    });
    expect(triage({ filename: 'a.jpeg' }, jpegOnly)).toBeUndefined();
    expect(allowedExtensions(jpegOnly)).toEqual(new Set(['jpg', 'jpeg', 'jpe', 'jfif', 'pjpeg', 'pjp']));
  });
});

describe('triage: filetype', () => {
  it.each(['text/html', 'image/svg+xml', 'application/pdf', 'image/heic', 'image/tiff', 'application/x-msdownload', 'TEXT/HTML; charset=utf-8'])(
    '%s: E_TYPE_NOT_ALLOWED (415)',
    (filetype) => {
      const refusal = summary(triage({ filetype }, policy));
      const normalised = filetype.toLowerCase().split(';')[0];
      expect(refusal).toEqual({ code: 'E_TYPE_NOT_ALLOWED', status: 415, message: `The declared type ${normalised} is not an allowed image. ${ALL_ALLOWED}` });
    },
  );

  it.each(['image/jpeg', 'image/jpg', 'image/pjpeg', 'image/x-png', 'image/apng', 'image/png', 'image/gif', 'image/webp', 'image/avif', 'IMAGE/JPEG', ' image/png '])(
    '%s: passes (an allowed type or an alias of one)',
    (filetype) => {
      expect(triage({ filetype }, policy)).toBeUndefined();
    },
  );

  it.each(['application/octet-stream', 'binary/octet-stream', '', 'not a mime type'])('%j: passes (says nothing)', (filetype) => {
    expect(triage({ filetype }, policy)).toBeUndefined();
  });

  it('reads `type` when `filetype` is absent', () => {
    expect(triage({ type: 'text/html' }, policy)?.code).toBe('E_TYPE_NOT_ALLOWED');
  });

  it('an alias resolves to a type that must itself be allowed', () => {
    const webpOnly = policyFrom({ ALLOWED_TYPES: 'image/webp' });
    expect(triage({ filetype: 'image/jpg' }, webpOnly)?.message).toBe('The declared type image/jpeg is not an allowed image. Allowed types: image/webp.');
    expect(triage({ filetype: 'image/webp' }, webpOnly)).toBeUndefined();
  });

  it('an allowed name does not excuse a refused type, nor the reverse', () => {
    expect(triage({ filename: 'photo.jpg', filetype: 'text/html' }, policy)?.code).toBe('E_TYPE_NOT_ALLOWED');
    expect(triage({ filename: 'page.html', filetype: 'image/jpeg' }, policy)?.code).toBe('E_TYPE_NOT_ALLOWED');
  });
});

describe('checkDeclaredLength', () => {
  it('0 bytes: E_EMPTY_UPLOAD (422)', () => {
    expect(summary(checkDeclaredLength(0, policy))).toEqual({
      code: 'E_EMPTY_UPLOAD',
      status: 422,
      message: 'The upload is empty (Upload-Length: 0): an image is required.',
    });
  });

  it('over MAX_UPLOAD_BYTES: E_UPLOAD_TOO_LARGE (413), naming both numbers and the variable', () => {
    const max = 50 * 1024 * 1024;
    expect(checkDeclaredLength(max, policy)).toBeUndefined();
    expect(summary(checkDeclaredLength(max + 1, policy))).toEqual({
      code: 'E_UPLOAD_TOO_LARGE',
      status: 413,
      message: 'Upload-Length 52,428,801 bytes exceeds the limit of 52,428,800 bytes (MAX_UPLOAD_BYTES).',
    });
  });

  it('follows MAX_UPLOAD_BYTES from the environment', () => {
    const small = policyFrom({ MAX_UPLOAD_BYTES: '1000' });
    expect(checkDeclaredLength(1000, small)).toBeUndefined();
    expect(checkDeclaredLength(1001, small)?.message).toContain('limit of 1,000 bytes (MAX_UPLOAD_BYTES)');
  });

  it('a deferred length (undefined) and ordinary sizes pass', () => {
    expect(checkDeclaredLength(undefined, policy)).toBeUndefined();
    expect(checkDeclaredLength(1, policy)).toBeUndefined();
    expect(checkDeclaredLength(5_000_000, policy)).toBeUndefined();
  });
});
