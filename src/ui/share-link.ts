/**
 * Share links: the run's whole configuration (an encoder run or a decoder's statements run) in the
 * URL fragment (`#run=<base64url JSON>`). The fragment never reaches a server, so a file name or a
 * fingerprint in it stays between the people who share the link.
 */
import { type SharedRun, validateSharedRun } from '../train/shared-run.ts';

const KEY = 'run';

export function shareLink(config: SharedRun, pageUrl: string): string {
  const url = new URL(pageUrl);
  url.hash = `${KEY}=${toBase64Url(new TextEncoder().encode(JSON.stringify(config)))}`;
  return url.toString();
}

/** The configuration in a page URL's fragment, null when there is none; a damaged link throws a message saying so. */
export function readShareLink(pageUrl: string): SharedRun | null {
  const hash = new URL(pageUrl).hash.replace(/^#/, '');
  const encoded = new URLSearchParams(hash).get(KEY);
  if (encoded === null) return null;
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(fromBase64Url(encoded)));
  } catch {
    throw new Error('this share link is damaged (its configuration could not be decoded); ask for the link again, copied whole');
  }
  return validateSharedRun(json);
}

function toBase64Url(bytes: Uint8Array): string {
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromBase64Url(text: string): Uint8Array {
  const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
  return Uint8Array.from(binary, (ch) => ch.charCodeAt(0));
}
