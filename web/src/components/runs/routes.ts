/** The runs pages; router.ts puts every domain's routes together. */
import type { RouteRecordRaw } from 'vue-router'

export const routes: RouteRecordRaw[] = []
