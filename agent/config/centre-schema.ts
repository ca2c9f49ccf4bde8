/**
 * `receiver.postgres`: the centre's output and dedup state in PostgreSQL, committed together (docs/centre.md).
 * Its own file because it is a feature of its own; schema.ts composes it into the receiver section.
 */
import { z } from '../util/zod.ts';
import { envOption } from '../util/env-option.ts';
import { fileOption } from '../util/file-option.ts';
import { urlOption } from '../util/url.ts';
import { duration } from '../util/units.ts';

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;
const identifier = (what: string) => z.string().regex(IDENTIFIER, `${what} must be a lower-case SQL identifier (letters, digits, _; at most 63)`);

export const receiverPostgresSchema = z
  .strictObject({
    url: urlOption({ schemes: ['postgres', 'postgresql'] }).describe(
      'postgres://user@host:5432/database (`?sslmode=require` for TLS). Keep the password out of the URL: password_file or password_env.',
    ),
    password_file: fileOption(z.string().optional().describe('File holding the password (its first line; relative to the config file).'), {
      what: 'PostgreSQL password',
      secret: true,
    }),
    password_env: envOption(z.string().optional().describe('Environment variable holding the password.'), { what: 'PostgreSQL password' }),
    schema: identifier('receiver.postgres.schema').default('edge_agent').describe('Schema holding the tables; created and migrated by the receiver.'),
    table: identifier('receiver.postgres.table').default('records').describe('Table the records land in (typed columns and the record as JSONB).'),
    pool_size: z.number().int().min(1).max(64).default(2).describe('Connections per receiver: one writes batches, the others prune.'),
    prune_every: duration().prefault('10m').describe('How often one receiver (the one holding the advisory lock) prunes the dedup state.'),
    retry_for: duration()
      .optional()
      .describe(
        'How long a batch waits for an unreachable database before it counts as failed (then receiver.output_retry_for applies). Default: for ever, as every batch needs the same database.',
      ),
  })
  .describe(
    'Records and dedup marks in PostgreSQL, one transaction per batch: exactly once whichever receiver takes a batch and whenever one crashes (docs/centre.md). Replaces `output` and `state`.',
  );

export type ReceiverPostgresConfig = z.output<typeof receiverPostgresSchema>;
