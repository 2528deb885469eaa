/**
 * Every command's help comes from one option table (src/cli/options.ts): each option has a
 * description, and shows its default and its environment variable where it has them. Groups
 * (`meshward ca`) list their commands; `--version` works.
 */
import { describe, expect, it } from 'vitest';
import type { CliIo } from '../../src/cli/command.ts';
import { loadCommands, runCli } from '../../src/cli/index.ts';
import type { CliOption } from '../../src/cli/options.ts';

async function cli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = { stdout: (t) => { stdout += t; }, stderr: (t) => { stderr += t; }, env: {}, cwd: process.cwd() };
  const code = await runCli(argv, io);
  return { code, stdout, stderr };
}

/** Lines that list `--name`: the usage line or an option line (summaries may mention flags). */
function listing(help: string, name: string): string[] {
  const flag = new RegExp(`(^|[ ,])--${name}( |$)`);
  return help.split('\n').filter((l) => (l.startsWith('Usage:') && flag.test(l)) || new RegExp(`^\\s+(-\\w, )?--${name}( |$)`).test(l));
}

/** The option line of `--name` (options are one per line, after the usage line). */
function optionLine(help: string, name: string): string | undefined {
  return listing(help, name).find((l) => !l.startsWith('Usage:'));
}

describe('CLI help', () => {
  it('describes every option of every command, with its default and environment variable', async () => {
    const commands = await loadCommands();
    expect(commands.length).toBeGreaterThan(10);
    for (const c of commands) {
      const r = await cli([...c.name.split(' '), '--help']);
      expect(r.code, c.name).toBe(0);
      for (const [name, option] of Object.entries((c.options ?? {}) as Record<string, CliOption>)) {
        const where = `meshward ${c.name} --${name}`;
        expect(option.description, where).toMatch(/\w{3}/);
        const line = optionLine(r.stdout, name);
        expect(line, `${where}: not in the help`).toBeDefined();
        expect(line, where).toContain(option.description);
        if (option.default !== undefined) expect(line, where).toContain(`default: ${option.default}`);
        if (option.env !== undefined) expect(line, where).toContain(`env: ${option.env}`);
        // Listed once: a flag the usage line also spells out is listed twice.
        expect(listing(r.stdout, name), `${where} listed more than once`).toHaveLength(1);
      }
    }
  });

  it('shows the ports serve listens on and the variables that set them', async () => {
    const r = await cli(['serve', '--help']);
    expect(optionLine(r.stdout, 'grpc-addr')).toMatch(/default: 127\.0\.0\.1:15010.*env: MESHWARD_GRPC_ADDR/);
    expect(optionLine(r.stdout, 'http-addr')).toMatch(/default: 127\.0\.0\.1:15000.*env: MESHWARD_HTTP_ADDR/);
    expect(optionLine(r.stdout, 'data')).toMatch(/default: \.meshward.*env: MESHWARD_DATA_DIR/);
  });

  it('lists only options a command uses: no --trust-domain on ca rotate, --domain once on limits match', async () => {
    expect(optionLine((await cli(['ca', 'rotate', '--help'])).stdout, 'trust-domain')).toBeUndefined();
    const limits = (await cli(['limits', 'match', '--help'])).stdout;
    expect(limits.match(/--domain/g)).toHaveLength(1);
  });

  it('gives every command group help: `meshward ca` and `meshward ca --help` list its commands', async () => {
    const commands = await loadCommands();
    const groups = [...new Set(commands.filter((c) => c.name.includes(' ')).map((c) => c.name.split(' ')[0]!))];
    expect(groups).toEqual(expect.arrayContaining(['ca', 'audit', 'policy', 'proxy', 'limits', 'config']));
    for (const group of groups) {
      for (const argv of [[group], [group, '--help']]) {
        const r = await cli(argv);
        expect(r.stderr, argv.join(' ')).not.toContain('unknown command');
        expect(r.code, argv.join(' ')).toBe(argv.length === 1 ? 2 : 0);
        const out = r.stdout;
        for (const c of commands.filter((x) => x.name.startsWith(`${group} `))) expect(out, argv.join(' ')).toContain(`meshward ${c.name}`);
      }
    }
  });

  it('still says "unknown command" for a word that is no command or group', async () => {
    const r = await cli(['ca', 'frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown command "ca frobnicate"');
  });

  it('prints the version with --version and -V', async () => {
    for (const flag of ['--version', '-V']) {
      const r = await cli([flag]);
      expect(r.code, flag).toBe(0);
      expect(r.stdout).toMatch(/^meshward \d+\.\d+\.\d+/);
    }
  });
});
