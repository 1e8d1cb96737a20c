/**
 * Commands declared as data (wrangler's style): a `CommandSpec` names the command (noun-verb, e.g.
 * `tenants create`), its arguments, options (with the environment variable each may come from) and
 * examples, and `defineCommand` turns it into a commander command, creating the noun's parent
 * command on first use. Help shows the examples.
 */
import { Command, Option } from 'commander';
import { IsolaError } from '../errors.js';

export interface ArgSpec {
  /** commander syntax: `<name>` required, `[name]` optional, `<names...>` variadic. */
  syntax: string;
  description: string;
}

export interface OptionSpec {
  /** commander flags, e.g. `-r, --route <route>`. */
  flags: string;
  description: string;
  /** Environment variable that supplies the value when the flag is absent. */
  env?: string;
  default?: string | boolean;
  /** The option may be repeated; values are collected into an array. */
  repeatable?: boolean;
}

export interface CommandSpec<O> {
  /** `serve`, or noun-verb such as `tenants create`. */
  name: string;
  /** One line, shown in the parent's command list. */
  summary: string;
  /** For a noun-verb name: the noun command's one-line description (first definition wins). */
  group?: string;
  args?: ArgSpec[];
  options?: OptionSpec[];
  /** Shell lines shown under "Examples:" in help. */
  examples: string[];
  /** Runs the command with positional arguments and parsed options. */
  run(args: string[], opts: O): Promise<void>;
}

/** Registers `spec` on `program` (see the module docstring). */
export function defineCommand<O>(program: Command, spec: CommandSpec<O>): Command {
  const words = spec.name.split(' ');
  let parent = program;
  for (const noun of words.slice(0, -1)) {
    parent = parent.commands.find((c) => c.name() === noun) ?? parent.command(noun).description(spec.group ?? `${noun} commands`);
  }
  const cmd = parent.command(words[words.length - 1]!).description(spec.summary);
  for (const a of spec.args ?? []) cmd.argument(a.syntax, a.description);
  for (const o of spec.options ?? []) {
    const opt = new Option(o.flags, o.description);
    if (o.env) opt.env(o.env);
    if (o.default !== undefined) opt.default(o.default);
    if (o.repeatable) opt.argParser((value: string, prev: string[] | undefined) => [...(prev ?? []), value]);
    cmd.addOption(opt);
  }
  cmd.addHelpText('after', `\nExamples:\n${spec.examples.map((e) => `  ${e}\n`).join('')}`);
  cmd.action(async (...params: unknown[]) => {
    const command = params[params.length - 1] as Command;
    const positional = params.slice(0, -2).flat().map(String);
    await spec.run(positional, command.opts() as O);
  });
  return cmd;
}

/** Parses a port flag (0..65535). @throws IsolaError ERR_USAGE. */
export function parsePort(value: string, flag: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new IsolaError('ERR_USAGE', `${flag} must be 0..65535, got ${value}`, { user: true });
  return port;
}
