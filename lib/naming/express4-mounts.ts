// Express 4 mount templates: read back from path-to-regexp 0.1's regexps, or inferred by probing.
import { matchLayer, type LayerLike, type MatchResult } from './layers'
import { safeDecode } from './paths'

/** Probes which segments a layer captures as parameters; URL-safe, never a real route segment. */
const SENTINEL = 'ebt-probe-4f1d9c'

const templateCache = new WeakMap<LayerLike, string>()

/** The template an Express 4 (or router < 2.3) mount layer was registered with, cached per layer once known exactly. */
export function inferredMountTemplate(layer: LayerLike, match: MatchResult): string {
  return templateCache.get(layer) ?? inferTemplate(layer, match)
}

/**
 * Express 4 keeps no template for `app.use(path, fn)`, only a regexp, which is read back (casing
 * and all; a path array, as its alternatives joined by `,`, or the alternative that matched when
 * one cannot be read). A RegExp mount is named by the RegExp.
 * For a layer whose regexp cannot be read (older router 2.x reports no pattern either), each
 * segment of the concrete match is replaced by a probe in turn, and a segment the layer then
 * captures as parameter `:name` is that parameter. A segment found as a literal in the regexp is
 * spelled as the regexp has it (without a regexp, a segment no probe may replace is a literal);
 * anything else is a value: `:name` when it is a whole parameter's, else `*`, so a raw value never
 * reaches a name.
 */
function inferTemplate(layer: LayerLike, match: MatchResult): string {
  const keys = match.keys
  const regexp = layer.regexp
  const read = regexp === undefined ? undefined : templateOfSource(regexp.source, keys)
  if (read !== undefined) {
    templateCache.set(layer, read)
    return read
  }
  if (regexp !== undefined) {
    const alternatives = readAlternatives(regexp, keys)
    if (alternatives !== undefined) {
      const template = alternatives.join(',')
      templateCache.set(layer, template)
      return template
    }
    // Express 4 keeps a RegExp mount as given; name it as Express 5 does, by the RegExp
    if (!regexp.source.endsWith(LOOKAHEAD)) {
      const template = String(regexp)
      templateCache.set(layer, template)
      return template
    }
    const alternative = templateOfAlternatives(regexp, keys, match.path)
    if (alternative !== undefined) return alternative
  }
  const segments = match.path.split('/')
  const resolved: Array<string | undefined> = new Array(segments.length)
  /** Segments the layer still matches with a probe in their place: not literals. */
  const free: boolean[] = new Array(segments.length).fill(false)
  let found = 0
  for (let i = 1; i < segments.length && keys.length > 0; i++) {
    if (segments[i] === '') continue
    const probe = segments.slice()
    probe[i] = SENTINEL
    const probed = matchLayer(layer, probe.join('/'))
    if (probed === undefined) continue
    free[i] = true
    for (const key of keys) {
      if (probed.params[key] === SENTINEL) {
        resolved[i] = `:${key}`
        found++
        break
      }
    }
  }
  if (keys.length > 0) matchLayer(layer, match.path) // put back the state Express 4 keeps on the layer
  let exact = found === keys.length && !(layer.matchers !== undefined && layer.matchers.length > 1)
  for (let i = 1; i < segments.length; i++) {
    if (resolved[i] !== undefined) {
      segments[i] = resolved[i] as string
      continue
    }
    if (segments[i] === '') continue
    // a literal, spelled as the regexp has it; without a regexp, a segment the layer needs as it is
    const spelled = regexp === undefined ? (free[i] ? undefined : segments[i]) : registeredSpelling(regexp, segments[i])
    if (spelled !== undefined) {
      segments[i] = spelled
      continue
    }
    exact = false
    // neither a probed parameter nor a literal of the regexp: a value, named if it is a whole parameter
    const segment = safeDecode(segments[i])
    const key = keys.find((name) => match.params[name] === segment)
    segments[i] = key === undefined ? '*' : `:${key}`
  }
  const template = segments.join('/')
  if (exact) templateCache.set(layer, template)
  return template
}

/** A whole literal segment of the regexp, spelled as the regexp has it (`users` -> `Users`); undefined when there is none. */
function registeredSpelling(regexp: RegExp, segment: string): string | undefined {
  const source = regexp.source
  const escaped = `\\/${segment.replace(/\./g, '\\.')}`
  const haystack = regexp.flags.includes('i') ? source.toLowerCase() : source
  const needle = regexp.flags.includes('i') ? escaped.toLowerCase() : escaped
  for (let at = haystack.indexOf(needle); at !== -1; at = haystack.indexOf(needle, at + 1)) {
    const after = source[at + escaped.length]
    if (after === undefined || !LITERAL_CHAR.test(after)) return source.slice(at + 2, at + escaped.length).replace(/\\\./g, '.')
  }
  return undefined
}

/**
 * Whether an Express 4 layer's regexp reads back to `paths` (a sub-app's `mountpath`, as an array
 * of its alternatives): tells a wrapped sub-app mount from other layers.
 */
export function readsAsMount(layer: LayerLike, match: MatchResult, paths: unknown[]): boolean {
  const regexp = layer.regexp
  if (regexp === undefined) return false
  const read = paths.length > 1 ? readAlternatives(regexp, match.keys) : [templateOfSource(regexp.source, match.keys)]
  if (read === undefined || read.length !== paths.length) return false
  return paths.every((path, i) => read[i] === (typeof path === 'string' ? path.replace(/\/$/, '') : regexpTemplate(path)))
}

/**
 * A path array's regexp (`^\/a...|^\/b...`, a RegExp element as its own source): the template of
 * each alternative, a RegExp element as `/source/` (Express 4 keeps no flags of its own for it);
 * undefined when it is not an array's or one alternative cannot be read.
 */
function readAlternatives(regexp: RegExp, keys: string[]): string[] | undefined {
  const parts = topLevelAlternatives(regexp.source)
  if (parts.length < 2) return undefined
  const templates: string[] = []
  let pending: string[] = []
  let first = 0
  let paths = 0
  for (const part of parts) {
    const count = countCaptures(part)
    if (part.startsWith('^') && part.endsWith(MOUNT_SUFFIX)) {
      const template = templateOfSource(part, keys.slice(first, first + count))
      if (template === undefined) return undefined
      if (pending.length > 0) templates.push(regexpTemplate(new RegExp(pending.join('|'))))
      pending = []
      templates.push(template)
      paths++
    } else pending.push(part)
    first += count
  }
  if (pending.length > 0) templates.push(regexpTemplate(new RegExp(pending.join('|'))))
  return paths > 0 ? templates : undefined
}

function regexpTemplate(path: unknown): string {
  return path instanceof RegExp ? `/${path.source}/` : String(path)
}

/** A regexp source split at its top-level `|`. */
function topLevelAlternatives(source: string): string[] {
  const parts: string[] = []
  let depth = 0
  let inClass = false
  let start = 0
  for (let i = 0; i < source.length; i++) {
    const char = source[i]
    if (char === '\\') i++
    else if (inClass) inClass = char !== ']'
    else if (char === '[') inClass = true
    else if (char === '(') depth++
    else if (char === ')') depth--
    else if (char === '|' && depth === 0) {
      parts.push(source.slice(start, i))
      start = i + 1
    }
  }
  parts.push(source.slice(start))
  return parts
}

/** A path array's regexp (`^\/a...|^\/b...`): the template of the alternative that matches `path`. */
function templateOfAlternatives(regexp: RegExp, keys: string[], path: string): string | undefined {
  const parts = regexp.source.split('|^')
  if (parts.length < 2) return undefined
  let first = 0
  for (let p = 0; p < parts.length; p++) {
    const source = p === 0 ? parts[p] : `^${parts[p]}`
    const count = countCaptures(source)
    let alternative: RegExp
    try {
      alternative = new RegExp(source, regexp.flags)
    } catch {
      return undefined
    }
    if (alternative.test(path)) return templateOfSource(source, keys.slice(first, first + count))
    first += count
  }
  return undefined
}

function countCaptures(source: string): number {
  let count = 0
  for (const found of source.matchAll(/\\.|\((?!\?)/g)) if (found[0][0] !== '\\') count++
  return count
}

/** The pieces path-to-regexp 0.1 (Express 4) writes for a path, the keys each holds, and what each was in the template. */
const REGEXP_TOKENS: Array<[string, number, (key: string) => string]> = [
  ['(?:\\/([^/]+?)((?:[/].+?)?))?', 2, (key) => `/:${key}*?`],
  ['(?:\\/([^/]+?)((?:[/].+?)?))', 2, (key) => `/:${key}*`],
  ['(?:\\/([^/]+?))?', 1, (key) => `/:${key}?`],
  ['(?:\\/([^/]+?))', 1, (key) => `/:${key}`],
  ['(?:\\.([^/\\.]+?))?', 1, (key) => `.:${key}?`],
  ['(?:\\.([^/\\.]+?))', 1, (key) => `.:${key}`],
  ['(.*)', 1, () => '*']
]

/** A parameter with its own pattern (`/:id(\\d+)`), after a slash, a dot, or nothing. */
const CUSTOM_CAPTURES: Array<[string, string]> = [
  ['(?:\\/(', '/'],
  ['(?:\\.(', '.'],
  ['(?:(', '']
]

const LOOKAHEAD = '(?=\\/|$)'

const MOUNT_SUFFIX = '\\/?' + LOOKAHEAD

/** A parameter after a literal in its segment (`/pre-:id`): a capture that stops at that literal. */
const BACKTRACK_START = '(?:((?:(?!\\/|'

const BACKTRACK_END = ').)+?))'

const LITERAL_CHAR = /[\w~!$&'+,;=:@%-]/

/** `^\/org(?:\/([^/]+?))\/?(?=\/|$)` -> `/org/:orgId`; undefined for anything it does not know. */
function templateOfSource(full: string, keys: string[]): string | undefined {
  if (!full.startsWith('^') || !full.endsWith(MOUNT_SUFFIX)) return undefined
  const source = full.slice(1, -MOUNT_SUFFIX.length)
  let template = ''
  let key = 0
  let i = 0
  next: while (i < source.length) {
    for (const [token, count, write] of REGEXP_TOKENS) {
      if (source.startsWith(token, i)) {
        if (key + count > keys.length) return undefined
        template += write(keys[key])
        key += count
        i += token.length
        continue next
      }
    }
    if (source.startsWith(BACKTRACK_START, i)) {
      const end = source.indexOf(BACKTRACK_END, i + BACKTRACK_START.length)
      if (end === -1 || key >= keys.length) return undefined
      i = end + BACKTRACK_END.length
      template += `:${keys[key++]}`
      if (source[i] === '?') template += source[i++]
      continue
    }
    for (const [start, separator] of CUSTOM_CAPTURES) {
      if (!source.startsWith(start, i)) continue
      const end = closingParen(source, i + start.length)
      if (end === -1 || source[end + 1] !== ')' || key >= keys.length) return undefined
      template += `${separator}:${keys[key++]}(${source.slice(i + start.length, end)})`
      i = end + 2
      if (source[i] === '?') template += source[i++]
      continue next
    }
    const char = source[i]
    if (char === '\\' && i + 1 < source.length && (source[i + 1] === '/' || source[i + 1] === '.')) {
      template += source[i + 1]
      i += 2
    } else if (LITERAL_CHAR.test(char)) {
      template += char
      i++
    } else return undefined
  }
  return key === keys.length ? template.replace(/\/$/, '') : undefined
}

/** Index of the `)` that closes a group whose content starts at `from`; -1 if none. */
function closingParen(source: string, from: number): number {
  let depth = 1
  for (let i = from; i < source.length; i++) {
    const char = source[i]
    if (char === '\\') i++
    else if (char === '(') depth++
    else if (char === ')' && --depth === 0) return i
  }
  return -1
}
