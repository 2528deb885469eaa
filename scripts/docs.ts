/** Regenerates the generated sections of README.md and BENCHMARKS.md from the code and the fragments. */
import 'reflect-metadata';
import { readFileSync, writeFileSync } from 'node:fs';
import { applySections, benchmarkSections, generatedSections } from '../src/cli/docs.ts';

writeFileSync('README.md', applySections(readFileSync('README.md', 'utf8'), await generatedSections()));
writeFileSync('BENCHMARKS.md', applySections(readFileSync('BENCHMARKS.md', 'utf8'), benchmarkSections()));
console.log('README.md and BENCHMARKS.md generated sections updated');
