// A stock Node gRPC client (grpc-js + grpc-js-xds) balanced by lookaside's xDS service.
//
//   GRPC_XDS_BOOTSTRAP=bootstrap.json node xds_client.js xds:///compute --proto FILE
//
// Same interface and output as lookaside/bench/stock_xds_client.py: --concurrency calls
// to lookaside.v1.Compute/ComputeTask in a closed loop; every --window seconds one JSON
// line {"t", "served": {backend_id: calls}, "failed", "errors"}; stops after --seconds
// (0: when stdin closes).
'use strict';

const grpc = require('@grpc/grpc-js');
const grpcXds = require('@grpc/grpc-js-xds');
const protoLoader = require('@grpc/proto-loader');

function parseArgs(argv) {
  const args = { concurrency: 8, seconds: 0, window: 0.5, timeout: 5, proto: '' };
  const rest = [];
  for (let i = 0; i < argv.length; i += 1) {
    const flag = argv[i];
    if (flag.startsWith('--')) {
      const key = flag.slice(2);
      if (!(key in args)) throw new Error(`unknown flag ${flag}`);
      const value = argv[i + 1];
      i += 1;
      args[key] = key === 'proto' ? value : Number(value);
    } else {
      rest.push(flag);
    }
  }
  if (rest.length !== 1 || !args.proto) {
    throw new Error('usage: xds_client.js TARGET --proto load_balancer.proto [--concurrency N]');
  }
  args.target = rest[0];
  return args;
}

function main() {
  const args = parseArgs(process.argv.slice(2));
  grpcXds.register();
  const definition = protoLoader.loadSync(args.proto, { keepCase: true });
  const { Compute } = grpc.loadPackageDefinition(definition).lookaside.v1;
  const client = new Compute(args.target, grpc.credentials.createInsecure());
  let served = {};
  let failures = [];
  let stopped = false;
  const started = Date.now();

  function call() {
    if (stopped) return;
    const deadline = new Date(Date.now() + args.timeout * 1000);
    client.ComputeTask({ input: 'stock' }, { deadline }, (error, reply) => {
      if (error) {
        failures.push(`${grpc.status[error.code]}: ${error.details}`);
        setTimeout(call, 50);
        return;
      }
      served[reply.backend_id] = (served[reply.backend_id] || 0) + 1;
      setImmediate(call);
    });
  }

  function stop() {
    stopped = true;
    clearInterval(timer);
    client.close();
    process.exit(0);
  }

  const timer = setInterval(() => {
    const t = (Date.now() - started) / 1000;
    const line = { t, served, failed: failures.length, errors: failures.slice(0, 3) };
    process.stdout.write(`${JSON.stringify(line)}\n`);
    served = {};
    failures = [];
    if (args.seconds > 0 && t >= args.seconds) stop();
  }, args.window * 1000);

  if (args.seconds <= 0) {
    process.stdin.on('end', stop);
    process.stdin.resume();
  }
  for (let i = 0; i < args.concurrency; i += 1) call();
}

main();
