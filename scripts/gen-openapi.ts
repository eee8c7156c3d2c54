// Regenerates docs/openapi.json from the API routes (npm run gen:openapi); test/host/http.test.ts keeps it in step.
import { writeFileSync } from 'node:fs';
import { openApiDocument } from '../src/host/openapi.js';

writeFileSync(new URL('../docs/openapi.json', import.meta.url), JSON.stringify(await openApiDocument(), null, 2) + '\n');
