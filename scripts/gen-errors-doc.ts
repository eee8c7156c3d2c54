// Regenerates docs/errors.md from the error registry (npm run gen:errors).
import { writeFileSync } from 'node:fs';
import { renderErrorsMarkdown } from '../src/core/errors/index.js';

writeFileSync(new URL('../docs/errors.md', import.meta.url), renderErrorsMarkdown());
