import { Text } from '@codemirror/state'
import { describe, expect, it } from 'vitest'
import { errorsFrom, lineOf, markers } from './codemirror'

describe('editor errors', () => {
  it('finds the line a server message names', () => {
    expect(lineOf('line 12: invalid YAML: mapping values are not allowed here')).toBe(12)
    expect(lineOf("ERROR! couldn't resolve module/action 'aptt' (main.yml:7:7)")).toBe(7)
    expect(lineOf('the playbook has no play')).toBeNull()
    expect(errorsFrom('the playbook has no play')).toEqual([{ line: 1, message: 'the playbook has no play' }])
  })

  it('marks the whole line, clamped to the document', () => {
    const doc = Text.of(['- hosts: all', '  tasks:', '    - aptt: name=x'])
    const [marker] = markers(doc, [{ line: 3, message: 'unknown module' }])
    expect(marker).toMatchObject({ from: 22, to: 40, severity: 'error', message: 'unknown module' })
    expect(markers(doc, [{ line: 99, message: 'past the end' }])[0]?.from).toBe(22)
  })
})
