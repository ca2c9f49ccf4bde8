import { z, duration } from '../../../agent/sdk/index.ts';
import { sqlCredentialOptions, sqlCursorOptions, exactlyOneInput } from '../../common/sql/options.ts';
import { sqlTlsOptions } from '../../common/sql/tls.ts';

/** Built on first use (agent/sdk/define.ts). */
export const options = () =>
  z
    .strictObject({
      host: z.string().min(1).default('127.0.0.1').describe('Server host name or address (or a Unix socket directory).'),
      port: z.number().int().min(1).max(65535).default(5432).describe('Server port.'),
      database: z.string().min(1).describe('Database to read.'),
      user: z.string().min(1).default('postgres').describe('Role to connect as (read access to the table is enough).'),
      ...sqlCredentialOptions(),
      connect_timeout: duration(1).prefault('10s').describe('Longest a connection attempt may take.'),
      tls: sqlTlsOptions('PostgreSQL', true),
      ...sqlCursorOptions(),
    })
    .superRefine(exactlyOneInput);
export type Options = z.output<ReturnType<typeof options>>;
