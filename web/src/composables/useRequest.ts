/** Data a page loads, with its loading state and the problem when it failed; `reload()` runs it again. */
import { ref, shallowRef, type Ref, type ShallowRef } from 'vue'
import { toProblem, type Problem } from '@/api/problems'

export interface Request<T> {
  data: ShallowRef<T | undefined>
  loading: Ref<boolean>
  problem: Ref<Problem | null>
  reload: () => Promise<void>
}

export function useRequest<T>(load: () => Promise<T>, options: { immediate?: boolean } = {}): Request<T> {
  const data = shallowRef<T>()
  const loading = ref(false)
  const problem = ref<Problem | null>(null)
  let serial = 0

  async function reload(): Promise<void> {
    const mine = ++serial
    loading.value = true
    problem.value = null
    try {
      const value = await load()
      if (mine === serial) data.value = value
    } catch (error) {
      if (mine === serial) problem.value = toProblem(error)
    } finally {
      if (mine === serial) loading.value = false
    }
  }

  if (options.immediate !== false) void reload()
  return { data, loading, problem, reload }
}
