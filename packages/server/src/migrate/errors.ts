/**
 * The migration will not proceed, for a reason the operator must resolve (the message says what and
 * how): the schemas differ, the target holds other data under the same keys, the server keys differ.
 * Nothing was changed after the check that refused, so fixing the cause and running again continues.
 */
export class MigrationRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MigrationRefused';
  }
}

/** A short, single-line rendering of a column value for messages. */
export function showValue(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  if (Buffer.isBuffer(value)) return `<${value.length} bytes>`;
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
