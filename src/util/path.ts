/** `['inputs', 2, 'topic']` → `inputs[2].topic`: how error messages name a field. */
export function formatPath(path: readonly (PropertyKey | { key: PropertyKey })[]): string {
  return path.reduce<string>((acc, segment) => {
    const part = typeof segment === 'object' && segment !== null ? segment.key : segment;
    if (typeof part === 'number') return `${acc}[${part}]`;
    return acc ? `${acc}.${String(part)}` : String(part);
  }, '');
}
