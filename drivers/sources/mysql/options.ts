import { z, duration } from '../../../agent/sdk/index.ts';
import { sqlCredentialOptions, sqlCursorOptions, exactlyOneInput } from '../../common/sql/options.ts';
import { sqlTlsOptions } from '../../common/sql/tls.ts';

/** Built on first use (agent/sdk/define.ts). */
export const options = () =>
  z
    .strictObject({
      host: z.string().min(1).default('127.0.0.1').describe('Server host name or address.'),
      port: z.number().int().min(1).max(65535).default(3306).describe('Server port.'),
      database: z.string().min(1).describe('Database (schema) to read.'),
      user: z.string().min(1).describe('Account to connect as (SELECT on the table; PROCESS lets the source see open transactions).'),
      ...sqlCredentialOptions(),
      connect_timeout: duration(1).prefault('10s').describe('Longest a connection attempt may take.'),
      // mysql2 sets the SNI from the host itself and lets no check name be given: no `servername` here.
      tls: sqlTlsOptions('MariaDB/MySQL', false),
      late_commit_lag: duration()
        .prefault('10s')
        .describe(
          'Only without the PROCESS privilege: rows are read once they have been visible this long, so a transaction committing later than this can be skipped.',
        ),
      ...sqlCursorOptions(),
    })
    .superRefine(exactlyOneInput);
export type Options = z.output<ReturnType<typeof options>>;
