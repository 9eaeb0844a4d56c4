/** Who is signed in, their organizations and role: what pages and controls decide by. */
import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import { api, type Schemas } from '@/api/client'
import { unwrap } from '@/api/problems'
import { saveTokens, tokens } from '@/api/session'

export type Role = 'viewer' | 'operator' | 'admin'
const RANK: Record<Role, number> = { viewer: 1, operator: 2, admin: 3 }

export const useAuth = defineStore('auth', () => {
  const me = ref<Schemas['MeRead'] | null>(null)
  const signedIn = computed(() => me.value !== null)
  const role = computed<Role | null>(() => (me.value?.is_superadmin ? 'admin' : ((me.value?.role as Role | null) ?? null)))

  function can(needed: Role): boolean {
    return role.value !== null && RANK[role.value] >= RANK[needed]
  }

  async function load(): Promise<void> {
    if (!tokens()) {
      me.value = null
      return
    }
    me.value = unwrap(await api.GET('/api/v1/users/me'))
  }

  async function signIn(email: string, password: string): Promise<void> {
    const pair = unwrap(await api.POST('/api/v1/auth/login', { body: { email, password } }))
    saveTokens(pair)
    await load()
  }

  async function signOut(): Promise<void> {
    const pair = tokens()
    if (pair) await api.POST('/api/v1/auth/logout', { body: { refresh_token: pair.refresh_token } }).catch(() => undefined)
    saveTokens(null)
    me.value = null
  }

  async function switchOrganization(id: string): Promise<void> {
    me.value = unwrap(await api.PATCH('/api/v1/users/me', { body: { current_organization_id: id } }))
  }

  function forget(): void {
    me.value = null
  }

  return { me, signedIn, role, can, load, signIn, signOut, switchOrganization, forget }
})
