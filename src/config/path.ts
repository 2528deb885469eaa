/** Field paths: arrays of keys ↔ `spec.rules[0].to` text ↔ JSON pointers. */
export type FieldPath = (string | number)[];

export function formatPath(path: FieldPath): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else if (/^[A-Za-z_][\w-]*$/.test(p)) out += out ? `.${p}` : p;
    else out += `[${JSON.stringify(p)}]`;
  }
  return out;
}

/** `/spec/rules/0` → ['spec', 'rules', 0] (numeric segments become indexes). */
export function fromJsonPointer(pointer: string): FieldPath {
  if (!pointer) return [];
  return pointer.slice(1).split('/').map((s) => {
    const unescaped = s.replace(/~1/g, '/').replace(/~0/g, '~');
    return /^\d+$/.test(unescaped) ? Number(unescaped) : unescaped;
  });
}
