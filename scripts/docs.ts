/** Regenerates the generated sections of README.md (config reference, CLI reference, error catalog). */
import 'reflect-metadata';
import { readFileSync, writeFileSync } from 'node:fs';
import { applySections, generatedSections } from '../src/cli/docs.ts';

const readme = readFileSync('README.md', 'utf8');
writeFileSync('README.md', applySections(readme, await generatedSections()));
console.log('README.md generated sections updated');
