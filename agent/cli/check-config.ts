import type { Command } from 'commander';
import { loadConfigFile } from '../app.ts';
import { configProblems, placed } from '../checks/index.ts';
import { configError, formatIssue } from '../config/load.ts';
import type { DefineCommand } from './command.ts';

export const checkConfig: DefineCommand = (parent: Command, exit) => {
  parent
    .command('check-config')
    .summary('validate a config file and exit')
    .description(
      "Validate a config file: the schema, then what it names on this machine (key files and their modes, TLS and password files, environment variables named for secrets) and each sink's own checks. Every problem gives file:line:column and the setting's path; risky but legal settings are warnings. Prints a one-line summary.",
    )
    // --schema-only is listed under Options; the usage line stays the one every error message quotes.
    .usage('FILE')
    .argument('<FILE>', 'config file (YAML)')
    .option('--schema-only', "check the file alone, away from the machine it is for: skip key, TLS and password files and the drivers' preflights")
    .action(async (file: string, options: CheckConfigOptions) => exit(await checkConfigCommand(file, options)));
};

export interface CheckConfigOptions {
  schemaOnly?: boolean;
}

/**
 * Validates a config: the schema (every problem, or stop), then the effectful checks (agent/checks): every
 * problem at once, errors exit 2, warnings are printed on stderr and leave the exit code at 0.
 */
export async function checkConfigCommand(file: string, options: CheckConfigOptions = {}): Promise<number> {
  const loaded = loadConfigFile(file);
  const { config } = loaded;
  const problems = await configProblems(loaded, { machine: !options.schemaOnly });
  const warnings = placed(
    loaded,
    problems.filter((p) => p.severity === 'warning'),
  );
  for (const w of warnings) process.stderr.write(`edge-agent: warning: ${formatIssue(file, w).trimStart()}\n`);
  const errors = placed(
    loaded,
    problems.filter((p) => p.severity === 'error'),
  );
  if (errors.length > 0) throw configError(file, errors);
  const sources = config.sources.map((s) => `${s.name} (${s.type})`).join(', ') || 'none';
  const warned = warnings.length > 0 ? ` (${warnings.length} warning${warnings.length === 1 ? '' : 's'})` : '';
  process.stdout.write(`${file}: ok${warned} — device ${config.device?.id ?? '(none)'}, sources: ${sources}, sink: ${config.sink?.type ?? 'none'}\n`);
  return 0;
}
