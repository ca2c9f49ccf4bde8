// Shared by every driver that takes a password: see drivers/common/secrets.ts.
export { readPassword, type PasswordSource } from '../secrets.ts';
