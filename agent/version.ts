import pkg from '../package.json' with { type: 'json' };

/** The package.json version; a JSON import so that the bundled executable carries it too. */
export const VERSION: string = pkg.version;
