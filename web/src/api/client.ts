/** The API client, typed from the server's OpenAPI document (src/api/schema.d.ts, generated). */
import createClient from 'openapi-fetch'
import type { components, paths } from './schema'
import { authorizedFetch } from './session'

export type Schemas = components['schemas']
export const api = createClient<paths>({ baseUrl: '', fetch: authorizedFetch })
