/** Evaluation off the event loop: worker threads with per-evaluation budgets. */
export { EvaluationPool, type EvaluationPoolOptions, type PolicySource, type PooledPolicy, pooledPolicy, sharedEvaluationPool } from './pool.ts';
