/** The app's sections, in the order the sidebar shows them; `role` hides what a role cannot use. */
import type { Role } from '@/stores/auth'

export interface Section {
  to: string
  label: string
  role?: Role
}

export const SECTIONS: Section[] = [
  { to: '/', label: 'Dashboard' },
  { to: '/runs', label: 'Runs' },
  { to: '/inventories', label: 'Inventories' },
  { to: '/credentials', label: 'Credentials', role: 'operator' },
  { to: '/playbooks', label: 'Playbooks' },
  { to: '/stacks', label: 'Stacks' },
  { to: '/assistant', label: 'Assistant' },
  { to: '/admin', label: 'Admin', role: 'admin' },
]
