/** Public interface of the configuration capability. */
export { API_VERSION, DEFAULT_NAMESPACE, type ConfigDocument, type DocumentSource } from './document.ts';
export { ConfigInvalidError, errorCount, formatIssue, type ConfigIssue } from './errors.ts';
export { loadConfigDir, listConfigFiles, type LoadedConfig } from './load.ts';
export { createSnapshot, contentVersion, type ConfigSnapshot } from './snapshot.ts';
export { ConfigStore, type SnapshotListener, type SnapshotGate, type ReloadResult, type RejectedConfig, type ConfigStoreOptions } from './store.ts';
export { parseDuration } from './duration.ts';
export { resolveMesh } from './mesh-defaults.ts';
export { KINDS } from './kinds/index.ts';
export * from './kinds/index.ts';
export { selectorMatches } from './selector.ts';
