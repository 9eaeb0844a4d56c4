/** Problem details (RFC 9457) as the server sends them, and their field errors by form field. */

export interface FieldError {
  field: string
  message: string
}

export interface Problem {
  status: number
  title: string
  detail: string
  code: string
  request_id?: string
  errors?: FieldError[]
}

export function isProblem(value: unknown): value is Problem {
  return typeof value === 'object' && value !== null && 'status' in value && 'code' in value && 'detail' in value
}

/** A problem for anything thrown (a network failure becomes one too), so the UI has one shape to show. */
export function toProblem(error: unknown): Problem {
  if (isProblem(error)) return error
  const detail = error instanceof Error ? error.message : String(error)
  return { status: 0, title: 'Network error', detail: detail || 'the server could not be reached', code: 'NETWORK' }
}

/** `body.hosts.0.name` → `hosts.0.name`: the field's path inside the form's model. */
export function formPath(field: string): string {
  return field.replace(/^(body|query|path)\./, '')
}

/** The messages of a problem by form path; `prefix` keeps only one part of the body (`definition`). */
export function fieldErrors(problem: Problem | null | undefined, prefix = ''): Record<string, string> {
  const out: Record<string, string> = {}
  for (const error of problem?.errors ?? []) {
    let path = formPath(error.field)
    if (prefix) {
      if (path !== prefix && !path.startsWith(`${prefix}.`)) continue
      path = path.slice(prefix.length + 1)
    }
    out[path] ??= error.message
  }
  return out
}

/** What to say about a problem in one line; a 403 reads as what the role lacks. */
export function describe(problem: Problem): string {
  if (problem.status === 403) return `Not allowed: ${problem.detail}`
  return problem.detail || problem.title
}

/** The data of an openapi-fetch result, or the problem thrown. */
export function unwrap<T>(result: { data?: T; error?: unknown; response: Response }): T {
  if (result.error !== undefined || result.data === undefined) {
    if (result.response.ok && result.error === undefined) return undefined as T
    throw isProblem(result.error)
      ? result.error
      : ({ status: result.response.status, title: result.response.statusText, detail: String(result.error ?? ''), code: 'HTTP_ERROR' } satisfies Problem)
  }
  return result.data
}
