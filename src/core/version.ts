// Generated from package.json by scripts/gen-version.mjs (npm run build); do not edit.
export const VERSION = "0.1.0";
