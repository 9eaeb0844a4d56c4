/** Run statuses as people read them: a colour (Element Plus tag type) and whether the run is over. */
export type RunStatus = 'pending' | 'running' | 'successful' | 'failed' | 'canceled' | 'timeout'
export const STATUSES: RunStatus[] = ['pending', 'running', 'successful', 'failed', 'canceled', 'timeout']
export const FINISHED = new Set<string>(['successful', 'failed', 'canceled', 'timeout'])

const TAGS: Record<string, 'info' | 'primary' | 'success' | 'danger' | 'warning'> = {
  pending: 'info',
  running: 'primary',
  successful: 'success',
  failed: 'danger',
  canceled: 'warning',
  timeout: 'warning',
}

export function tagType(status: string): 'info' | 'primary' | 'success' | 'danger' | 'warning' {
  return TAGS[status] ?? 'info'
}

/** Hosts that failed or were unreachable, from a run's per-host tallies. */
export function failedHosts(stats: Record<string, Record<string, number>>): string[] {
  return Object.entries(stats)
    .filter(([, tally]) => (tally.failed ?? 0) > 0 || (tally.unreachable ?? 0) > 0)
    .map(([host]) => host)
    .sort()
}
