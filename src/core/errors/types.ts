/** One entry of the error registry. `code` is stable forever once released; `http` is the status the API uses. */
export interface ErrorSpec {
  readonly http: number;
  /** One sentence for docs/errors.md: when it happens and what the caller can do. */
  readonly doc: string;
}
export type ErrorTable = Readonly<Record<`HYLICS_ERR_${string}`, ErrorSpec>>;
