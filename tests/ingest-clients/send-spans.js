// send-spans.js - make GenAI spans with the OpenTelemetry JS SDK and send
// them through a real OTLP/HTTP exporter (JSON or protobuf) to the gateway.
//
//   node send-spans.js --url URL --key KEY [--encoding json|proto] [--spans N]
//        [--batch N] [--canary STR] [--acks FILE] [--tag STR]
//        [--exporters N] [--pause MS]
//
// Each batch is one exporter.export() call (one HTTP request).  With
// --exporters N, N exporters (each its own HTTP connection) send N times
// --spans spans at once, each pausing --pause ms between its batches.  The span IDs
// of every batch the exporter reports as exported (HTTP 200) are appended to
// --acks, one hex span ID a line, so a test can check that every
// acknowledged span was shipped.  Exit 0 when every batch was acknowledged,
// 3 when some were not (the count is printed), 2 on usage errors.
'use strict';

const { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } =
  require('@opentelemetry/sdk-trace-base');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const fs = require('fs');

function args() {
  const a = { encoding: 'json', spans: 10, batch: 512, canary: '', acks: '', tag: 'run', timeout: 10000,
              exporters: 1, pause: 0 };
  const v = process.argv.slice(2);
  for (let i = 0; i < v.length; i += 2) {
    const k = v[i].replace(/^--/, '');
    if (!(k in a) && k !== 'url' && k !== 'key') {
      console.error(`send-spans: unknown option ${v[i]}`);
      process.exit(2);
    }
    a[k] = v[i + 1];
  }
  if (!a.url || a.key === undefined) {
    console.error('send-spans: --url and --key are required');
    process.exit(2);
  }
  a.spans = Number(a.spans);
  a.batch = Number(a.batch);
  a.timeout = Number(a.timeout);
  a.exporters = Number(a.exporters);
  a.pause = Number(a.pause);
  return a;
}

function exporterFor(a) {
  const opts = { url: a.url, headers: a.key ? { Authorization: `Bearer ${a.key}` } : {},
                 timeoutMillis: a.timeout };
  if (a.encoding === 'proto') {
    const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-proto');
    return new OTLPTraceExporter(opts);
  }
  const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http');
  return new OTLPTraceExporter(opts);
}

function exportBatch(exporter, spans) {
  return new Promise((resolve) => exporter.export(spans, (r) => resolve(r)));
}

function makeSpans(a, tracer, n) {
  for (let i = 0; i < n; i++) {
    const span = tracer.startSpan(`chat gpt-4o-mini ${i}`, {
      attributes: {
        'gen_ai.operation.name': 'chat',
        'gen_ai.system': 'openai',
        'gen_ai.request.model': 'gpt-4o-mini',
        'gen_ai.response.model': 'gpt-4o-mini',
        'gen_ai.usage.input_tokens': 12 + (i % 7),
        'gen_ai.usage.output_tokens': 30 + (i % 5),
        'gen_ai.response.finish_reasons': ['stop'],
        'gen_ai.prompt': JSON.stringify([{ role: 'user', content: `question ${i} ${a.canary}` }]),
        'gen_ai.completion': JSON.stringify([{ role: 'assistant', content: `answer ${i} ${a.canary}` }]),
      },
    });
    span.end();
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// One exporter sending SPANS in batches; returns [acked, failed].
async function run(a, spans) {
  const exporter = exporterFor(a);
  let acked = 0, failed = 0;
  for (let i = 0; i < spans.length; i += a.batch) {
    if (i && a.pause)
      await sleep(a.pause);
    const batch = spans.slice(i, i + a.batch);
    const r = await exportBatch(exporter, batch);
    if (r.code === 0) {
      acked += batch.length;
      if (a.acks)
        fs.appendFileSync(a.acks, batch.map((s) => s.spanContext().spanId + '\n').join(''));
    } else {
      failed += batch.length;
      console.error(`send-spans: batch at ${i} not acknowledged: ${r.error ? r.error.message : r.code}`);
    }
  }
  await exporter.shutdown();
  return [acked, failed];
}

async function main() {
  const a = args();
  const mem = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': `ingest-test-${a.tag}` }),
    spanProcessors: [new SimpleSpanProcessor(mem)],
  });
  const tracer = provider.getTracer('tracevault-ingest-test', '1.0.0');
  makeSpans(a, tracer, a.spans * a.exporters);
  const all = mem.getFinishedSpans();
  const runs = [];
  for (let e = 0; e < a.exporters; e++)
    runs.push(run(a, all.slice(e * a.spans, (e + 1) * a.spans)));
  let acked = 0, failed = 0;
  for (const [ok, bad] of await Promise.all(runs)) {
    acked += ok;
    failed += bad;
  }
  console.log(`acknowledged ${acked} spans, not acknowledged ${failed}`);
  process.exit(failed ? 3 : 0);
}

main().catch((e) => { console.error(`send-spans: ${e.stack || e}`); process.exit(1); });
