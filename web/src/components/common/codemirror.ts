/**
 * CodeMirror 6 for YAML, loaded on demand: the editor is its own chunk, fetched when a page shows one.
 * `markers()` turns the server's errors (a line and a message) into inline diagnostics.
 */
import type { Diagnostic } from '@codemirror/lint'
import type { Text } from '@codemirror/state'

export interface LineError {
  line: number
  message: string
}

/** `line 12: invalid YAML: …` or `main.yml:12:3` → 12; none when the message names no line. */
export function lineOf(message: string): number | null {
  const match = /\bline (\d+)\b/i.exec(message) ?? /:(\d+):\d+/.exec(message)
  return match ? Number(match[1]) : null
}

/** The server's message, with the line it names (or line 1), as editor errors. */
export function errorsFrom(message: string | undefined | null): LineError[] {
  if (!message) return []
  return [{ line: lineOf(message) ?? 1, message }]
}

export function markers(doc: Text, errors: LineError[]): Diagnostic[] {
  return errors.map((error) => {
    const line = doc.line(Math.min(Math.max(1, error.line), doc.lines))
    return { from: line.from, to: line.to, severity: 'error', message: error.message }
  })
}

export async function loadEditor() {
  const [view, state, commands, language, yaml, lint] = await Promise.all([
    import('@codemirror/view'),
    import('@codemirror/state'),
    import('@codemirror/commands'),
    import('@codemirror/language'),
    import('@codemirror/lang-yaml'),
    import('@codemirror/lint'),
  ])
  return { view, state, commands, language, yaml, lint }
}

export async function loadMerge() {
  const [merge, view, state, yaml] = await Promise.all([
    import('@codemirror/merge'),
    import('@codemirror/view'),
    import('@codemirror/state'),
    import('@codemirror/lang-yaml'),
  ])
  return { merge, view, state, yaml }
}
