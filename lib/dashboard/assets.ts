// The page's files (HTML, CSS, script), shipped beside this module in assets/ and read once.
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

/** A static file as served: its bytes, content type and an ETag for revalidation. */
export interface Asset {
  readonly body: Buffer
  readonly type: string
  readonly etag: string
}

export interface Assets {
  /** The page, with `%BASE%` where the mount path goes. */
  readonly page: string
  readonly script: Asset
  readonly style: Asset
}

/** The file names the page refers to; the handler serves them and only them. */
export const SCRIPT_FILE = 'dashboard.js'
export const STYLE_FILE = 'dashboard.css'
const PAGE_FILE = 'index.html'
const ASSET_DIR = join(__dirname, 'assets')

let loaded: Assets | undefined

/** Read the files the first time a dashboard is made; the same bytes are served from then on. */
export function loadAssets(): Assets {
  if (loaded !== undefined) return loaded
  loaded = {
    page: readFileSync(join(ASSET_DIR, PAGE_FILE), 'utf8'),
    script: asset(SCRIPT_FILE, 'text/javascript; charset=utf-8'),
    style: asset(STYLE_FILE, 'text/css; charset=utf-8')
  }
  return loaded
}

function asset(file: string, type: string): Asset {
  const body = readFileSync(join(ASSET_DIR, file))
  return { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` }
}

/** The page for a mount path: the path goes into attributes, so it is escaped for HTML. */
export function renderPage(page: string, base: string): string {
  return page.replaceAll('%BASE%', escapeHtml(base))
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}
