/**
 * The glob patterns of `[functions.build] watch`: which changed files should rebuild a function.
 *
 * Syntax (paths use "/"): `*` any characters within one path segment, `**` any number of whole
 * segments (including none), `?` one character other than "/", `{a,b,c}` one of the alternatives
 * (not nested). A pattern without any of these names a file or a directory; a directory means
 * everything under it. Matching is case-sensitive, on absolute paths.
 */

/** A compiled glob. */
export interface Glob {
  /** The pattern as given (absolute). */
  source: string;
  /** The longest leading directory with no glob characters: where a watcher must look. */
  base: string;
  /** Whether `path` (absolute, "/"-separated) matches. */
  matches(path: string): boolean;
}

const SPECIAL = /[*?{]/;

function escapeRegExp(text: string): string {
  return text.replace(/[.+^$()|[\]\\/]/g, '\\$&');
}

/** Translates one glob (no `{}` groups left at top level) into a regular expression source. */
function translate(pattern: string): string {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '*') {
      if (pattern[i + 1] === '*') {
        const before = i === 0 || pattern[i - 1] === '/';
        const after = pattern[i + 2];
        i++;
        if (before && after === '/') {
          out += '(?:[^/]+/)*';
          i++; // the "/" after "**" is part of the group
        } else if (before && after === undefined) {
          out += '.*';
        } else {
          out += '[^/]*';
        }
      } else {
        out += '[^/]*';
      }
    } else if (ch === '?') {
      out += '[^/]';
    } else if (ch === '{') {
      const close = pattern.indexOf('}', i);
      if (close === -1) {
        out += '\\{';
        continue;
      }
      const alternatives = pattern.slice(i + 1, close).split(',');
      out += `(?:${alternatives.map(translate).join('|')})`;
      i = close;
    } else {
      out += escapeRegExp(ch);
    }
  }
  return out;
}

/**
 * Compiles an absolute glob.
 *
 * @param pattern absolute, "/"-separated (as `build.watch` is after config resolution)
 */
export function compileGlob(pattern: string): Glob {
  const segments = pattern.split('/');
  const firstSpecial = segments.findIndex((s) => SPECIAL.test(s));
  if (firstSpecial === -1) {
    // A plain path: the file itself, or everything under the directory.
    const plain = pattern.replace(/\/+$/, '') || '/';
    const prefix = plain === '/' ? '' : plain;
    return {
      source: pattern,
      base: plain,
      matches: (path) => path === plain || path.startsWith(`${prefix}/`),
    };
  }
  const base = segments.slice(0, firstSpecial).join('/') || '/';
  const regex = new RegExp(`^${translate(pattern)}$`);
  return { source: pattern, base, matches: (path) => regex.test(path) };
}
