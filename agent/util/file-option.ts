import { z } from './zod.ts';

export interface FileOptionMeta {
  /** What the file holds, for messages: "TLS CA", "password". */
  readonly what: string;
  /** It holds a secret: readable by others is worth a warning. */
  readonly secret?: boolean;
}

/**
 * The settings that name a file the driver reads (a TLS certificate, a password file), declared where the
 * setting is (`fileOption(z.string().optional(), { what: 'TLS CA' })`). `check-config` finds them by walking
 * each driver's options schema and checks that the files exist and can be read, without knowing any driver.
 * A registry of its own, not `.meta()`: the marks stay out of the config file's JSON Schema.
 */
export const fileOptions = z.registry<FileOptionMeta>();

export function fileOption<T extends z.ZodType>(schema: T, meta: FileOptionMeta): T {
  fileOptions.add(schema, meta);
  return schema;
}
