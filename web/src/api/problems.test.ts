import { describe as suite, expect, it } from 'vitest'
import { describe, fieldErrors, formPath, isProblem, toProblem, unwrap } from './problems'

const problem = {
  status: 422,
  title: 'Validation failed',
  detail: 'body.hosts.0.name: required',
  code: 'VALIDATION_ERROR',
  errors: [
    { field: 'body.hosts.0.name', message: 'is required' },
    { field: 'body.definition.template.services.web.ports.1', message: 'port 8080 is taken' },
    { field: 'query.size', message: 'must be at most 100' },
  ],
}

suite('problems', () => {
  it('maps field paths to form paths', () => {
    expect(formPath('body.hosts.0.name')).toBe('hosts.0.name')
    expect(formPath('query.size')).toBe('size')
    expect(fieldErrors(problem)).toEqual({
      'hosts.0.name': 'is required',
      'definition.template.services.web.ports.1': 'port 8080 is taken',
      size: 'must be at most 100',
    })
  })

  it('keeps one part of the body with a prefix', () => {
    expect(fieldErrors(problem, 'definition')).toEqual({ 'template.services.web.ports.1': 'port 8080 is taken' })
    expect(fieldErrors(null)).toEqual({})
  })

  it('reads a 403 as what is not allowed', () => {
    expect(describe({ ...problem, status: 403, detail: 'this needs the operator role; you are viewer' })).toBe(
      'Not allowed: this needs the operator role; you are viewer',
    )
  })

  it('turns anything thrown into a problem', () => {
    expect(isProblem(problem)).toBe(true)
    expect(toProblem(new TypeError('Failed to fetch'))).toMatchObject({ status: 0, code: 'NETWORK', detail: 'Failed to fetch' })
  })

  it('unwraps data or throws the problem', () => {
    const ok = new Response(null, { status: 200 })
    expect(unwrap({ data: { id: 1 }, response: ok })).toEqual({ id: 1 })
    const bad = new Response(null, { status: 422 })
    expect(() => unwrap({ error: problem, response: bad })).toThrow()
    try {
      unwrap({ error: problem, response: bad })
    } catch (error) {
      expect(error).toBe(problem)
    }
  })
})
