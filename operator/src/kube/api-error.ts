// A short, log-friendly description of an error from client-node: the HTTP status and the apiserver's message,
// not the whole response with its headers.

import { ApiException } from '@kubernetes/client-node';

export function describeError(error: unknown): { code?: number; message: string } {
  if (error instanceof ApiException) {
    const body = (error as ApiException<unknown>).body;
    let message = typeof body === 'string' ? body : JSON.stringify(body);
    try {
      message = (JSON.parse(message) as { message?: string }).message ?? message;
    } catch {
      // not JSON: keep the text
    }
    return { code: error.code, message: message.slice(0, 500) };
  }
  if (error instanceof Error) return { message: `${error.name}: ${error.message}`.split('\n')[0] ?? error.name };
  return { message: String(error) };
}
