// The HTTP API, relative to the page's <base href> (the server writes the
// route prefix or the external URL's path into it).

export class ApiError extends Error {
  constructor(
    message: string,
    readonly errorType: string,
    readonly status: number,
  ) {
    super(message);
  }
}

interface Envelope<T> {
  status: 'success' | 'error';
  data: T;
  error?: string;
  errorType?: string;
  warnings?: string[];
}

/** Resolves an API path against the UI's base (no leading slash: `api/v1/query`). */
export function apiUrl(path: string, params?: Record<string, string | string[]>): string {
  const u = new URL(path, document.baseURI);
  if (params) {
    for (const [k, v] of Object.entries(params)) {
      for (const x of Array.isArray(v) ? v : [v]) u.searchParams.append(k, x);
    }
  }
  return u.toString();
}

/** GETs a Prometheus-style JSON envelope and returns its `data`, or throws ApiError. */
export async function get<T>(path: string, params?: Record<string, string | string[]>, signal?: AbortSignal): Promise<T> {
  const res = await fetch(apiUrl(path, params), { signal, headers: { Accept: 'application/json' } });
  let body: Envelope<T>;
  try {
    body = (await res.json()) as Envelope<T>;
  } catch {
    throw new ApiError(`${res.status} ${res.statusText}`, 'http', res.status);
  }
  if (body.status !== 'success') throw new ApiError(body.error ?? 'unknown error', body.errorType ?? '', res.status);
  return body.data;
}

/** POSTs a form (queries: long expressions do not fit URLs). */
export async function post<T>(path: string, params: Record<string, string>, signal?: AbortSignal): Promise<T> {
  const res = await fetch(apiUrl(path), {
    method: 'POST',
    signal,
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
    body: new URLSearchParams(params).toString(),
  });
  let body: Envelope<T>;
  try {
    body = (await res.json()) as Envelope<T>;
  } catch {
    throw new ApiError(`${res.status} ${res.statusText}`, 'http', res.status);
  }
  if (body.status !== 'success') throw new ApiError(body.error ?? 'unknown error', body.errorType ?? '', res.status);
  return body.data;
}

/**
 * Calls one of the notifier's endpoints (`api/v2/…`, Alertmanager's, and
 * `api/v1/notify/…`): plain JSON in and out, an error is a JSON string or
 * text. Answers the parsed body, or null for an empty one.
 */
export async function callJson<T>(method: string, path: string, body?: unknown, params?: Record<string, string | string[]>): Promise<T> {
  const res = await fetch(apiUrl(path, params), {
    method,
    headers: body === undefined ? { Accept: 'application/json' } : { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  let parsed: unknown = null;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
  }
  if (!res.ok) {
    const msg = typeof parsed === 'string' ? parsed.trim() : text || res.statusText;
    throw new ApiError(`${msg} (HTTP ${res.status} from ${method} ${path})`, 'http', res.status);
  }
  return parsed as T;
}

export type Labels = Record<string, string>;
export interface MatrixSeries {
  metric: Labels;
  values: [number, string][];
}
export interface VectorSample {
  metric: Labels;
  value: [number, string];
}
export type QueryResult =
  | { resultType: 'matrix'; result: MatrixSeries[] }
  | { resultType: 'vector'; result: VectorSample[] }
  | { resultType: 'scalar'; result: [number, string] }
  | { resultType: 'string'; result: [number, string] };

export function queryRange(expr: string, start: number, end: number, step: number, signal?: AbortSignal) {
  return post<QueryResult>(
    'api/v1/query_range',
    { query: expr, start: String(start / 1000), end: String(end / 1000), step: String(step / 1000) },
    signal,
  );
}

export function queryInstant(expr: string, time: number | null, signal?: AbortSignal) {
  const p: Record<string, string> = { query: expr };
  if (time !== null) p.time = String(time / 1000);
  return post<QueryResult>('api/v1/query', p, signal);
}

/** Parses a sample value as the API writes it ("NaN", "+Inf", "1.5"). */
export function sampleValue(s: string): number {
  if (s === '+Inf') return Infinity;
  if (s === '-Inf') return -Infinity;
  return Number(s);
}
