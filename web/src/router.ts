/** One route per page; pages load lazily, so the first screen carries only what it needs. */
import { createRouter, createWebHistory, type RouteRecordRaw } from 'vue-router'
import { onExpired, tokens } from '@/api/session'
import { routes as admin } from '@/components/admin/routes'
import { routes as assistant } from '@/components/assistant/routes'
import { routes as credentials } from '@/components/credentials/routes'
import { routes as inventories } from '@/components/inventories/routes'
import { routes as playbooks } from '@/components/playbooks/routes'
import { routes as runs } from '@/components/runs/routes'
import { routes as stacks } from '@/components/stacks/routes'
import { useAuth } from '@/stores/auth'

declare module 'vue-router' {
  interface RouteMeta {
    public?: boolean
    title?: string
  }
}

const routes: RouteRecordRaw[] = [
  { path: '/login', name: 'login', component: () => import('@/pages/LoginPage.vue'), meta: { public: true, title: 'Sign in' } },
  { path: '/', name: 'dashboard', component: () => import('@/pages/DashboardPage.vue'), meta: { title: 'Dashboard' } },
  ...runs,
  ...inventories,
  ...credentials,
  ...playbooks,
  ...stacks,
  ...assistant,
  ...admin,
  { path: '/:pathMatch(.*)*', name: 'not-found', component: () => import('@/pages/NotFoundPage.vue'), meta: { title: 'Not found' } },
]

export const router = createRouter({ history: createWebHistory(), routes })

router.beforeEach(async (to) => {
  if (to.meta.public) return true
  const auth = useAuth()
  const hadSession = tokens() !== null
  if (!auth.signedIn && hadSession) {
    try {
      await auth.load()
    } catch {
      auth.forget()
    }
  }
  if (!auth.signedIn) return { name: 'login', query: { next: to.fullPath, ...(hadSession ? { expired: '1' } : {}) } }
  return true
})

router.afterEach((to) => {
  document.title = to.meta.title ? `${to.meta.title} · WindFlow` : 'WindFlow'
})

onExpired(() => {
  useAuth().forget()
  const here = router.currentRoute.value
  // During the first navigation the guard above sends the user to sign in itself.
  if (here.matched.length && !here.meta.public) void router.push({ name: 'login', query: { next: here.fullPath, expired: '1' } })
})
