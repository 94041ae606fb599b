'use strict';
/*
 * generate.js - drive real instrumentation libraries against a stub
 * OpenAI-compatible server on 127.0.0.1 and write the spans they make as
 * OTLP/JSON (the OpenTelemetry JS OTLP JSON serializer), for the agent's
 * conformance test (tests/integration/agent-conformance.sh).
 *
 *   node generate.js KIND OUTDIR
 *
 * KIND: openinference   @arizeai/openinference-instrumentation-openai
 *       openllmetry     @traceloop/instrumentation-openai (+ a workflow span
 *                       with the @traceloop/ai-semantic-conventions names)
 *       genai           the OTel GenAI conventions (@opentelemetry/
 *                       semantic-conventions): current attributes and the
 *                       older span events, set from the stub's real replies
 * One process per kind: each instrumentation patches the openai module.
 * Writes OUTDIR/KIND.json (one export request) and appends the same request
 * as one line to OUTDIR/collector.jsonl (the Collector's file exporter).
 */
const fs = require('fs');
const http = require('http');
const path = require('path');
const { trace } = require('@opentelemetry/api');
const { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } =
    require('@opentelemetry/sdk-trace-base');
const { JsonTraceSerializer } = require('@opentelemetry/otlp-transformer');

const [kind, outdir] = process.argv.slice(2);
if (!kind || !outdir) {
    console.error('usage: node generate.js openinference|openllmetry|genai OUTDIR');
    process.exit(2);
}

/* The stub: answers chat completions and embeddings like the OpenAI API. */
const REPLIES = [
    '{"answer": "Refunds take 5 days.", "ok": true}',
    'Write to support@example.com and we will help.',
];
let nchat = 0;
function stub(req, res) {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
        const q = JSON.parse(body || '{}');
        let out;
        if (req.url.endsWith('/embeddings')) {
            out = { object: 'list', model: 'text-embedding-3-small',
                    data: [{ object: 'embedding', index: 0, embedding: [0.125, -0.5, 0.25] }],
                    usage: { prompt_tokens: 6, total_tokens: 6 } };
        } else {
            const text = REPLIES[nchat++ % REPLIES.length];
            out = { id: 'chatcmpl-' + nchat, object: 'chat.completion', created: 1763790000,
                    model: q.model + '-2024-07-18',
                    choices: [{ index: 0, message: { role: 'assistant', content: text },
                                finish_reason: nchat % 2 ? 'stop' : 'length' }],
                    usage: { prompt_tokens: 11 + nchat, completion_tokens: 7 + nchat,
                             total_tokens: 18 + 2 * nchat } };
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(out));
    });
}

async function main() {
    const server = http.createServer(stub);
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    const openaiModule = require('openai');

    if (kind === 'openinference') {
        const { OpenAIInstrumentation } = require('@arizeai/openinference-instrumentation-openai');
        const inst = new OpenAIInstrumentation({ tracerProvider: provider });
        inst.manuallyInstrument(openaiModule);
    } else if (kind === 'openllmetry') {
        const { OpenAIInstrumentation } = require('@traceloop/instrumentation-openai');
        const inst = new OpenAIInstrumentation({ traceContent: true });
        inst.setTracerProvider(provider);
        inst.manuallyInstrument(openaiModule.OpenAI);     /* it patches the class's resources */
    }
    const OpenAI = openaiModule.OpenAI || openaiModule.default || openaiModule;
    const client = new OpenAI({ apiKey: 'sk-test-not-a-key',
                                baseURL: 'http://127.0.0.1:' + server.address().port + '/v1' });
    const prompts = ['My email is jane.roe@example.org: when is my refund due?', 'How do I reach support?'];
    const replies = [];
    for (const p of prompts) {
        const r = await client.chat.completions.create({
            model: 'gpt-4o-mini',
            messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: p }],
        });
        replies.push(r);
    }
    const emb = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'refund policy' });

    const tracer = provider.getTracer('tracevault-conformance');
    if (kind === 'openllmetry') {
        /* What the Traceloop SDK adds around instrumented calls: a workflow
         * span with association properties, under the library's names. */
        const { SpanAttributes, TraceloopSpanKindValues } = require('@traceloop/ai-semantic-conventions');
        const s = tracer.startSpan('refund.workflow');
        s.setAttribute(SpanAttributes.TRACELOOP_SPAN_KIND, TraceloopSpanKindValues.WORKFLOW);
        s.setAttribute(SpanAttributes.TRACELOOP_ASSOCIATION_PROPERTIES + '.session_id', 'sess-ollm-7');
        s.setAttribute(SpanAttributes.TRACELOOP_ASSOCIATION_PROPERTIES + '.user_id', 'user-ollm-9');
        s.setAttribute(SpanAttributes.TRACELOOP_ENTITY_INPUT, JSON.stringify({ args: [prompts[0]] }));
        s.setAttribute(SpanAttributes.TRACELOOP_ENTITY_OUTPUT,
                       JSON.stringify(replies[0].choices[0].message.content));
        s.end();
    } else if (kind === 'genai') {
        const sc = require('@opentelemetry/semantic-conventions/incubating');
        for (const [i, r] of replies.entries()) {
            const msg = r.choices[0].message;
            /* Current conventions: messages with parts, on the span. */
            const s = tracer.startSpan('chat ' + r.model);
            s.setAttribute(sc.ATTR_GEN_AI_OPERATION_NAME, 'chat');
            s.setAttribute(sc.ATTR_GEN_AI_PROVIDER_NAME, 'openai');
            s.setAttribute(sc.ATTR_GEN_AI_REQUEST_MODEL, 'gpt-4o-mini');
            s.setAttribute(sc.ATTR_GEN_AI_RESPONSE_MODEL, r.model);
            s.setAttribute(sc.ATTR_GEN_AI_CONVERSATION_ID, 'conv-genai-' + i);
            s.setAttribute(sc.ATTR_GEN_AI_USAGE_INPUT_TOKENS, r.usage.prompt_tokens);
            s.setAttribute(sc.ATTR_GEN_AI_USAGE_OUTPUT_TOKENS, r.usage.completion_tokens);
            s.setAttribute(sc.ATTR_GEN_AI_RESPONSE_FINISH_REASONS, [r.choices[0].finish_reason]);
            s.setAttribute(sc.ATTR_GEN_AI_SYSTEM_INSTRUCTIONS,
                           JSON.stringify([{ type: 'text', content: 'Be brief.' }]));
            s.setAttribute(sc.ATTR_GEN_AI_INPUT_MESSAGES, JSON.stringify([
                { role: 'user', parts: [{ type: 'text', content: prompts[i] }] }]));
            s.setAttribute(sc.ATTR_GEN_AI_OUTPUT_MESSAGES, JSON.stringify([
                { role: msg.role, parts: [{ type: 'text', content: msg.content },
                                          { type: 'tool_call', id: 'call_1', name: 'lookup_order',
                                            arguments: { order: 'A-1' } }],
                  finish_reason: r.choices[0].finish_reason }]));
            s.setAttribute('user.id', 'user-genai-' + i);
            s.end();
            /* Older conventions: gen_ai.system and the content as span events. */
            const o = tracer.startSpan('chat ' + r.model);
            o.setAttribute(sc.ATTR_GEN_AI_SYSTEM, 'openai');
            o.setAttribute(sc.ATTR_GEN_AI_OPERATION_NAME, 'chat');
            o.setAttribute(sc.ATTR_GEN_AI_REQUEST_MODEL, 'gpt-4o-mini');
            o.setAttribute(sc.ATTR_GEN_AI_USAGE_INPUT_TOKENS, r.usage.prompt_tokens);
            o.setAttribute(sc.ATTR_GEN_AI_USAGE_OUTPUT_TOKENS, r.usage.completion_tokens);
            o.addEvent('gen_ai.content.prompt', { 'gen_ai.prompt': JSON.stringify(
                [{ role: 'user', content: prompts[i] }]) });
            o.addEvent('gen_ai.content.completion', { 'gen_ai.completion': JSON.stringify(
                [{ role: msg.role, content: msg.content }]) });
            o.end();
        }
        const e = tracer.startSpan('embeddings ' + emb.model);
        e.setAttribute(sc.ATTR_GEN_AI_OPERATION_NAME, 'embeddings');
        e.setAttribute(sc.ATTR_GEN_AI_PROVIDER_NAME, 'openai');
        e.setAttribute(sc.ATTR_GEN_AI_REQUEST_MODEL, emb.model);
        e.setAttribute(sc.ATTR_GEN_AI_USAGE_INPUT_TOKENS, emb.usage.prompt_tokens);
        e.end();
    }
    await provider.forceFlush();
    const spans = exporter.getFinishedSpans();
    if (spans.length === 0)
        throw new Error(kind + ': the instrumentation made no spans');
    const body = Buffer.from(JsonTraceSerializer.serializeRequest(spans)).toString('utf8');
    fs.mkdirSync(outdir, { recursive: true });
    fs.writeFileSync(path.join(outdir, kind + '.json'), body);
    fs.appendFileSync(path.join(outdir, 'collector.jsonl'), collectorLine(body) + '\n');
    console.log(kind + ': ' + spans.length + ' spans');
    server.close();
}

/* The Collector's file exporter writes protobuf-JSON: 64-bit integers as
 * decimal strings (proto3 JSON mapping), one request per line. */
function collectorLine(body) {
    const int64 = new Set(['startTimeUnixNano', 'endTimeUnixNano', 'timeUnixNano', 'intValue']);
    return JSON.stringify(JSON.parse(body), (k, v) =>
        int64.has(k) && typeof v === 'number' ? String(v) : v);
}

main().catch((e) => { console.error(e && e.stack || e); process.exit(1); });
