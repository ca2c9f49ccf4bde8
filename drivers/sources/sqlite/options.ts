import { z } from '../../../agent/sdk/index.ts';
import { sqlCursorOptions, exactlyOneInput } from '../../common/sql/options.ts';

/** Built on first use (agent/sdk/define.ts). */
export const options = () =>
  z
    .strictObject({
      path: z.string().min(1).describe('The SQLite database file another program writes (relative to the config file); opened read-only.'),
      ...sqlCursorOptions(),
    })
    .superRefine(exactlyOneInput);
export type Options = z.output<ReturnType<typeof options>>;
