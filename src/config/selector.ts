/** Label selector matching shared by every capability that scopes by workload. */
export function selectorMatches(selector: { matchLabels: Record<string, string> } | undefined, labels: Readonly<Record<string, string>>): boolean {
  if (!selector) return true;
  for (const [k, v] of Object.entries(selector.matchLabels)) if (labels[k] !== v) return false;
  return true;
}
