/**
 * The signed-in session: tokens kept in localStorage, sent on every API call, refreshed quietly.
 *
 * A 401 on a call refreshes the pair once (one refresh at a time, shared by concurrent calls) and
 * retries the call; when the refresh fails too, the session is over and `onExpired` listeners (the
 * router) send the user to sign in, then back.
 */

export interface Tokens {
  access_token: string
  refresh_token: string
}

const KEY = 'windflow.session'
const listeners = new Set<() => void>()
let refreshing: Promise<boolean> | null = null

export function tokens(): Tokens | null {
  try {
    const raw = localStorage.getItem(KEY)
    return raw ? (JSON.parse(raw) as Tokens) : null
  } catch {
    return null
  }
}

export function saveTokens(pair: Tokens | null): void {
  if (pair) localStorage.setItem(KEY, JSON.stringify({ access_token: pair.access_token, refresh_token: pair.refresh_token }))
  else localStorage.removeItem(KEY)
}

export function onExpired(listener: () => void): () => void {
  listeners.add(listener)
  return () => listeners.delete(listener)
}

function expire(): void {
  saveTokens(null)
  for (const listener of listeners) listener()
}

async function refresh(): Promise<boolean> {
  const current = tokens()
  if (!current) return false
  const response = await fetch('/api/v1/auth/refresh', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ refresh_token: current.refresh_token }),
  })
  if (!response.ok) return false
  saveTokens((await response.json()) as Tokens)
  return true
}

function withToken(request: Request): Request {
  const pair = tokens()
  if (!pair) return request
  const headers = new Headers(request.headers)
  headers.set('Authorization', `Bearer ${pair.access_token}`)
  return new Request(request, { headers })
}

/** `fetch` for the API client: the bearer token on, and one quiet refresh on a 401. */
export async function authorizedFetch(input: Request | string | URL, init?: RequestInit): Promise<Response> {
  const request = input instanceof Request ? input : new Request(input, init)
  const again = request.clone()
  const response = await fetch(withToken(request))
  if (response.status !== 401 || request.url.includes('/api/v1/auth/') || !tokens()) return response
  refreshing ??= refresh().finally(() => (refreshing = null))
  if (!(await refreshing)) {
    expire()
    return response
  }
  return fetch(withToken(again))
}

/** The current access token, for what cannot send headers (a WebSocket's `?token=`). */
export function accessToken(): string {
  return tokens()?.access_token ?? ''
}
