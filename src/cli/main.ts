#!/usr/bin/env node
/**
 * The clip-ood program: the commands, each declared in the module that runs it, wired in --help
 * order; and the mapping of what a command throws to the exit status.
 */
import { Command, CommanderError } from "commander";
import { fileSystemError, isClipOodError } from "../errors.js";
import { addBenchCommand } from "./commands/bench-command.js";
import { addClassifyCommand } from "./commands/classify-command.js";
import { addDetectCommand } from "./commands/detect-command.js";
import { addDiscoverCommand } from "./commands/discover-command.js";
import { addCalibrateCommand, addCombineCommand, addDetectorCommand, addFitCommand } from "./commands/detector-commands.js";
import { addEmbedCommand } from "./commands/embed-command.js";
import { addEvalCommand } from "./commands/eval-command.js";
import { EXIT, EXIT_FOR, EXIT_HELP } from "./exit.js";
import { addModelsCommand } from "./commands/models-command.js";
import { watchStdout } from "./output.js";
import { addQueueCommand, addWorkerCommand } from "./commands/queue-commands.js";
import { addServeCommand } from "./commands/serve-command.js";
import { addExportCommand, addIndexCommand, addSearchCommand, addStoreCommand } from "./commands/store-commands.js";

export function buildProgram(): { program: Command; status: () => number } {
  let status: number = EXIT.ok;
  const program = new Command("clip-ood")
    .description("CLIP zero-shot classification and out-of-distribution detection, offline once the model is cached.")
    .version("0.1.0")
    .showHelpAfterError("(run with --help for usage)")
    .addHelpText("after", EXIT_HELP)
    .exitOverride();

  // The order here is the order of the commands in --help.
  for (const add of [
    addClassifyCommand,
    addDetectCommand,
    addFitCommand,
    addEvalCommand,
    addDiscoverCommand,
    addServeCommand,
    addBenchCommand,
    addCalibrateCommand,
    addCombineCommand,
    addIndexCommand,
    addWorkerCommand,
    addQueueCommand,
    addSearchCommand,
    addExportCommand,
    addStoreCommand,
    addDetectorCommand,
    addModelsCommand,
    addEmbedCommand,
  ]) {
    add(program, (s) => (status = s));
  }

  return { program, status: () => status };
}

export async function main(argv: string[]): Promise<number> {
  try {
    const { program, status } = buildProgram();
    if (argv.length <= 2) {
      program.outputHelp();
      return EXIT.usage;
    }
    await program.parseAsync(argv);
    return status();
  } catch (e) {
    if (e instanceof CommanderError) {
      return e.code === "commander.helpDisplayed" || e.code === "commander.version" || e.code === "commander.help" ? EXIT.ok : EXIT.usage;
    }
    const clear = isClipOodError(e) ? e : fileSystemError(e);
    if (clear) {
      process.stderr.write(`clip-ood: ${clear.message}\n`);
      if (clear.hint) process.stderr.write(`  hint: ${clear.hint}\n`);
      return EXIT_FOR[clear.code];
    }
    process.stderr.write(`clip-ood: unexpected error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return EXIT.internal;
  }
}

watchStdout();
process.exitCode = await main(process.argv);
