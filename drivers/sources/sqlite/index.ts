import { resolve } from 'node:path';
import { z, defineSourceDriver } from '../../../agent/sdk/index.ts';
import { sqlCursorOptions, exactlyOneInput } from '../../common/sql/options.ts';
import { SqlPolledSource, checkInput } from '../../common/sql/poller.ts';
import { inputName } from '../../common/sql/statements.ts';
import { SqliteDialect } from './dialect.ts';

const options = () =>
  z
    .strictObject({
      path: z.string().min(1).describe('The SQLite database file another program writes (relative to the config file); opened read-only.'),
      ...sqlCursorOptions(),
    })
    .superRefine(exactlyOneInput);

export const sqliteSource = defineSourceDriver({
  type: 'sqlite',
  summary: 'Polls a table or query of a SQLite file written by another program (read-only) by an increasing id or (timestamp, id) cursor.',
  mode: 'polled',
  options,
  create: (config, env) => {
    checkInput(config, 'sqlite');
    const path = resolve(env.baseDir, config.path);
    return new SqlPolledSource(config, new SqliteDialect(path, config, env), inputName(config));
  },
});
