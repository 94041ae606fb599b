'use strict';
/*
 * compare.js - the agent's records against the spans the instrumentations
 * wrote (tests/integration/agent-conformance.sh).
 *
 *   node compare.js RECORDS.jsonl AGENT CONF PROJECT=FILE...
 *
 * For every span of every FILE (an OTLP/JSON document, or JSON lines of
 * export requests), the expected record fields are computed here from the
 * span's attributes, named by the semantic-convention packages themselves
 * (@opentelemetry/semantic-conventions, @arizeai/openinference-semantic-
 * conventions, @traceloop/ai-semantic-conventions), and compared with the
 * agent's record of that span in PROJECT.  Identifiers are compared as the
 * keyed hashes `tracevault-agent hash` gives.  Prints TAP lines "ok"/"not
 * ok" one per span and field group; exits 1 on any mismatch.
 */
const fs = require('fs');
const { execFileSync } = require('child_process');
const sc = require('@opentelemetry/semantic-conventions/incubating');
const { SemanticConventions: OI } = require('@arizeai/openinference-semantic-conventions');
const { SpanAttributes: TL } = require('@traceloop/ai-semantic-conventions');

const [recordsFile, agent, conf, ...pairs] = process.argv.slice(2);
const records = fs.readFileSync(recordsFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));

function value(v) {
    if (!v) return undefined;
    if ('stringValue' in v) return v.stringValue;
    if ('intValue' in v) return Number(v.intValue);
    if ('doubleValue' in v) return Number(v.doubleValue);
    if ('boolValue' in v) return v.boolValue;
    if (v.arrayValue) return (v.arrayValue.values || []).map(value);
    return undefined;
}
function attrs(list) {
    const m = new Map();
    for (const a of list || []) m.set(a.key, value(a.value));
    return m;
}
function first(m, ...keys) {
    for (const k of keys) if (m.has(k) && m.get(k) !== '') return m.get(k);
    return undefined;
}
/* Text parts of a message list (the conventions' JSON shapes). */
function messageText(json, acc) {
    let v;
    try { v = JSON.parse(json); } catch (e) { acc.push(json); return; }
    (function walk(x) {
        if (typeof x === 'string') { acc.push(x); return; }
        if (Array.isArray(x)) { x.forEach(walk); return; }
        if (!x || typeof x !== 'object') return;
        if (typeof x.type === 'string' && x.type !== 'text') return;
        for (const k of ['content', 'text', 'parts', 'message']) if (k in x) walk(x[k]);
    })(v);
}
function indexedKeys(m, re) {
    return [...m.keys()].filter((k) => re.test(k));
}
function hash(project, domain, id) {
    return execFileSync(agent, ['-c', conf, 'hash', project, domain, id], { encoding: 'utf8' }).trim();
}
const EMAIL = /[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+/g;

/* The record fields a span must give. */
function expected(project, span) {
    const m = attrs(span.attributes);
    const x = {};
    const oi = m.has(OI.OPENINFERENCE_SPAN_KIND);
    x.format = oi ? 'openinference' : 'otlp';
    x.trace_id = span.traceId.toLowerCase();
    x.span_id = span.spanId.toLowerCase();
    x.model = first(m, sc.ATTR_GEN_AI_RESPONSE_MODEL, OI.LLM_MODEL_NAME, OI.EMBEDDING_MODEL_NAME,
                    sc.ATTR_GEN_AI_REQUEST_MODEL);
    x.provider = first(m, sc.ATTR_GEN_AI_PROVIDER_NAME, OI.LLM_PROVIDER, sc.ATTR_GEN_AI_SYSTEM, OI.LLM_SYSTEM);
    const kind = m.get(OI.OPENINFERENCE_SPAN_KIND);
    x.operation = first(m, sc.ATTR_GEN_AI_OPERATION_NAME) || (kind && kind.toLowerCase()) ||
                  first(m, TL.LLM_REQUEST_TYPE, TL.TRACELOOP_SPAN_KIND);
    x.input_tokens = first(m, sc.ATTR_GEN_AI_USAGE_INPUT_TOKENS, OI.LLM_TOKEN_COUNT_PROMPT);
    x.output_tokens = first(m, sc.ATTR_GEN_AI_USAGE_OUTPUT_TOKENS, OI.LLM_TOKEN_COUNT_COMPLETION);
    x.total_tokens = first(m, 'gen_ai.usage.total_tokens', OI.LLM_TOKEN_COUNT_TOTAL, TL.LLM_USAGE_TOTAL_TOKENS);
    /* Not reported: input + output (an embedding has no output tokens). */
    if (x.total_tokens === undefined && x.input_tokens !== undefined)
        x.total_tokens = x.input_tokens + (x.output_tokens || 0);
    const fr = m.get(sc.ATTR_GEN_AI_RESPONSE_FINISH_REASONS);
    x.finish_reason = (Array.isArray(fr) ? fr[0] : fr) || m.get(OI.LLM_FINISH_REASON);

    /* Input and output text, each once, in attribute order. */
    const input = [], output = [];
    for (const [k, v] of m) {
        if (typeof v !== 'string') continue;
        if (k === sc.ATTR_GEN_AI_SYSTEM_INSTRUCTIONS || k === sc.ATTR_GEN_AI_INPUT_MESSAGES) messageText(v, input);
        else if (k === sc.ATTR_GEN_AI_OUTPUT_MESSAGES) messageText(v, output);
        else if (/^llm\.input_messages\.\d+\.message\.content$/.test(k)) input.push(v);
        else if (/^llm\.output_messages\.\d+\.message\.content$/.test(k)) output.push(v);
    }
    for (const ev of span.events || []) {
        const e = attrs(ev.attributes);
        if (e.has('gen_ai.prompt')) messageText(e.get('gen_ai.prompt'), input);
        if (e.has('gen_ai.completion')) messageText(e.get('gen_ai.completion'), output);
    }
    if (!output.length && m.has(OI.OUTPUT_VALUE)) output.push(m.get(OI.OUTPUT_VALUE));
    if (!input.length && m.has(OI.INPUT_VALUE)) input.push(m.get(OI.INPUT_VALUE));
    if (!output.length && m.has(TL.TRACELOOP_ENTITY_OUTPUT)) output.push(m.get(TL.TRACELOOP_ENTITY_OUTPUT));
    if (!input.length && m.has(TL.TRACELOOP_ENTITY_INPUT)) input.push(m.get(TL.TRACELOOP_ENTITY_INPUT));
    const out = output.join('\n'), inp = input.join('\n');
    x.input_bytes = Buffer.byteLength(inp);
    x.output_bytes = Buffer.byteLength(out);
    x.output_chars = [...out].length;
    /* No output text: json_valid is not applicable (absent). */
    if (out.length) {
        try { JSON.parse(out); x.json_valid = true; } catch (e) { x.json_valid = false; }
    }
    x.pii_email = (inp.match(EMAIL) || []).length + (out.match(EMAIL) || []).length;

    const session = first(m, sc.ATTR_GEN_AI_CONVERSATION_ID, OI.SESSION_ID,
                          TL.TRACELOOP_ASSOCIATION_PROPERTIES + '.session_id');
    const user = first(m, OI.USER_ID, TL.TRACELOOP_ASSOCIATION_PROPERTIES + '.user_id');
    x.session_hash = session === undefined ? undefined : hash(project, 'session', session);
    x.user_hash = user === undefined ? undefined : hash(project, 'user', user);
    return x;
}

function spansOf(file) {
    const text = fs.readFileSync(file, 'utf8');
    const docs = file.endsWith('.jsonl') ? text.split('\n').filter(Boolean).map((l) => JSON.parse(l))
                                         : [JSON.parse(text)];
    return docs.flatMap((d) => d.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans)));
}

let n = 0, bad = 0, checked = 0;
for (const pair of pairs) {
    const [project, file] = pair.split('=');
    for (const span of spansOf(file)) {
        const x = expected(project, span);
        const mine = records.filter((r) => r.project === project && r.span_id === x.span_id &&
                                           r.trace_id === x.trace_id);
        const diffs = [];
        if (mine.length !== 1) diffs.push(mine.length + ' records');
        const r = mine[0] || {};
        for (const [k, v] of Object.entries(x)) {
            checked++;
            if (r[k] !== v) diffs.push(k + ': record ' + JSON.stringify(r[k]) + ', span ' + JSON.stringify(v));
        }
        n++;
        if (diffs.length) bad++;
        console.log((diffs.length ? 'not ok ' : 'ok ') + n + ' - ' + project + ' ' + file.split('/').pop() +
                    ' span "' + span.name + '" (' + x.format + ', ' + Object.keys(x).length + ' fields)' +
                    (diffs.length ? ': ' + diffs.join('; ') : ''));
    }
}
console.log('# ' + n + ' spans, ' + checked + ' field comparisons, ' + bad + ' spans differ');
process.exit(bad || n === 0 ? 1 : 0);
