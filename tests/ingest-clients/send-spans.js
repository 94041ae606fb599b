// send-spans.js - make GenAI spans with the OpenTelemetry JS SDK and send
// them through a real OTLP/HTTP exporter (JSON or protobuf) to the gateway.
//
//   node send-spans.js --url URL --key KEY [--encoding json|proto] [--spans N]
//        [--batch N] [--canary STR] [--acks FILE] [--tag STR]
//
// Each batch is one exporter.export() call (one HTTP request).  The span IDs
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
  const a = { encoding: 'json', spans: 10, batch: 512, canary: '', acks: '', tag: 'run', timeout: 10000 };
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

async function main() {
  const a = args();
  const mem = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': `ingest-test-${a.tag}` }),
    spanProcessors: [new SimpleSpanProcessor(mem)],
  });
  const tracer = provider.getTracer('tracevault-ingest-test', '1.0.0');
  for (let i = 0; i < a.spans; i++) {
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
  const spans = mem.getFinishedSpans();
  const exporter = exporterFor(a);
  let acked = 0, failed = 0;
  for (let i = 0; i < spans.length; i += a.batch) {
    const batch = spans.slice(i, i + a.batch);
    const r = await exportBatch(exporter, batch);
    if (r.code === 0) {
      acked += batch.length;
      if (a.acks)
        fs.appendFileSync(a.acks, batch.map((s) => s.spanContext().spanId + '\n').join(''));
    } else {
      failed += batch.length;
      if (!a.quiet)
        console.error(`send-spans: batch at ${i} not acknowledged: ${r.error ? r.error.message : r.code}`);
    }
  }
  await exporter.shutdown();
  console.log(`acknowledged ${acked} spans, not acknowledged ${failed}`);
  process.exit(failed ? 3 : 0);
}

main().catch((e) => { console.error(`send-spans: ${e.stack || e}`); process.exit(1); });
