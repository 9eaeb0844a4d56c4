import { describe, expect, it } from 'vitest'
import { useRequest } from './useRequest'

describe('useRequest', () => {
  it('keeps the data and clears the loading state', async () => {
    const request = useRequest(async () => 42)
    expect(request.loading.value).toBe(true)
    await request.reload()
    expect(request.data.value).toBe(42)
    expect(request.loading.value).toBe(false)
  })

  it('turns a failure into a problem', async () => {
    const request = useRequest(async () => {
      throw { status: 404, title: 'Not found', detail: 'run not found', code: 'NOT_FOUND' }
    }, { immediate: false })
    await request.reload()
    expect(request.problem.value?.detail).toBe('run not found')
    expect(request.data.value).toBeUndefined()
  })

  it('lets the latest call win', async () => {
    let calls = 0
    const waits = [60, 5]
    const request = useRequest(
      () => new Promise<number>((resolve) => { const n = ++calls; setTimeout(() => resolve(n), waits[n - 1]) }),
      { immediate: false },
    )
    await Promise.all([request.reload(), request.reload()])
    expect(request.data.value).toBe(2)
  })
})
