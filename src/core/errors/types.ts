/** One entry of the error registry. `code` is stable forever once released; `http` is the status the API uses. */
export interface ErrorSpec {
  readonly http: number;
  /** The CLI's exit status for this error: 2 for usage errors (bad input on the command line), else 1 (default). */
  readonly exit?: 1 | 2;
  /** One sentence for docs/errors.md: when it happens and what the caller can do. */
  readonly doc: string;
}
export type ErrorTable = Readonly<Record<`HYLICS_ERR_${string}`, ErrorSpec>>;
