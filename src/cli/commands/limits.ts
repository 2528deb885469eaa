/** `meshward limits ...`: implemented by the limits capability. */
export { commands } from '../../limits/cli.ts';
