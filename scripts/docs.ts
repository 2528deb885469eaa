/** Regenerates the generated sections of docs/*.md and BENCHMARKS.md from the code and bench/results/. */
import 'reflect-metadata';
import { readFileSync, writeFileSync } from 'node:fs';
import { applySections, generatedDocs } from '../src/cli/docs.ts';

const docs = await generatedDocs();
for (const { file, sections } of docs) writeFileSync(file, applySections(readFileSync(file, 'utf8'), sections));
console.log(`generated sections updated: ${docs.map((d) => d.file).join(', ')}`);
