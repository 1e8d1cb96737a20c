// Starts the isola CLI named by $BENCH_SUT_CLI with the arguments in $BENCH_SUT_ARGS (JSON).
// The benchmark launches isola through this file so that its command line carries neither the CLI
// path nor `dev --config …`: on the shared machine, other sessions' test cleanups that stop stray
// servers by command-line pattern killed benchmark servers mid-run.
import { pathToFileURL } from 'node:url';

const cli = process.env.BENCH_SUT_CLI;
const args = JSON.parse(process.env.BENCH_SUT_ARGS ?? '[]');
delete process.env.BENCH_SUT_CLI;
delete process.env.BENCH_SUT_ARGS;
process.argv = [process.argv[0], cli, ...args];
await import(pathToFileURL(cli).href);
