import { z } from './zod.ts';

export interface EnvOptionMeta {
  /** What the variable holds, for messages: "password", "token". */
  readonly what: string;
}

/**
 * The settings that name an environment variable the driver reads a secret from (`password_env`), marked
 * where the setting is declared, as fileOption marks files: the start-up checks find them by walking each
 * driver's options schema and refuse a variable that is not set, without knowing any driver.
 */
export const envOptions = z.registry<EnvOptionMeta>();

export function envOption<T extends z.ZodType>(schema: T, meta: EnvOptionMeta): T {
  envOptions.add(schema, meta);
  return schema;
}
