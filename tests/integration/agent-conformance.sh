#!/bin/bash
# agent-conformance.sh - the agent reads what real instrumentation writes
# (issue 8).  tests/conformance/generate.js drives the real OpenInference and
# OpenLLMetry OpenAI instrumentations, and the OTel GenAI conventions through
# the OpenTelemetry JS SDK, against a stub OpenAI-compatible server on
# 127.0.0.1, and writes their spans as OTLP/JSON documents and as the
# Collector's file exporter writes them (a request per line, int64 as
# strings).  The agent ships them (--once, file:// upstream), and
# tests/conformance/compare.js checks every extracted field of every span
# against values it computes from the span's own attributes.
#
# The npm packages are pinned by tests/conformance/package-lock.json and
# installed with `npm ci` in this test's temp dir (npm's cache makes later
# runs fast).  Without node/npm, or with the npm registry unreachable, the
# test is skipped and says why; any other failure fails it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent-lib.sh"
tv_init agent-conformance
[ -x "$AGENT" ] || tv_skip_all "agent not built"
command -v node >/dev/null && command -v npm >/dev/null ||
    tv_skip_all "node and npm are needed (scripts/setup.sh installs Debian's nodejs and npm)"
C="$top_srcdir/tests/conformance"
mkdir -p "$T/npm"
cp "$C/package.json" "$C/package-lock.json" "$C/generate.js" "$C/compare.js" "$T/npm/"
if ! (cd "$T/npm" && npm ci --no-audit --no-fund --ignore-scripts --prefer-offline) >"$T/npm.log" 2>&1; then
    if ! timeout 20 npm ping >>"$T/npm.log" 2>&1; then
        tv_skip_all "the npm registry is unreachable: cannot install the pinned instrumentation packages"
    fi
    sed 's/^/# /' "$T/npm.log" | tail -20
    echo "Bail out! npm ci failed with the registry reachable"
    exit 1
fi
tv_plan 6

agent_conf </dev/null
cat >> "$T/tv.conf" <<'CONF'

[project.conf]
writers = root
readers = root

[project.collector]
writers = root
readers = root
CONF
mkdir -p "$T/mnt/conf" "$T/mnt/collector" "$T/gen"
ok_gen=1
for k in openinference openllmetry genai; do
    (cd "$T/npm" && node generate.js "$k" "$T/gen") >>"$T/gen.log" 2>&1 || ok_gen=0
done
sed 's/^/# /' "$T/gen.log"
tv_ok "the instrumentations wrote their spans as OTLP/JSON" \
    test $ok_gen = 1 -a -s "$T/gen/openinference.json" -a -s "$T/gen/openllmetry.json" -a -s "$T/gen/genai.json"
tv_ok "...and one Collector-style request per line, int64 as strings" \
    sh -c "test \"\$(grep -c '' '$T/gen/collector.jsonl')\" -eq 3 && grep -q '\"startTimeUnixNano\":\"[0-9]*\"' '$T/gen/collector.jsonl'"
cp "$T/gen/openinference.json" "$T/gen/openllmetry.json" "$T/gen/genai.json" "$T/mnt/conf/"
cp "$T/gen/collector.jsonl" "$T/mnt/collector/"
tv_ok "the agent ships them all (--once, exit 0)" "$AGENT" -c "$T/tv.conf" --once 2>>"$T/agent.log"
agent_outbox > "$T/records.jsonl"
tv_ok "nothing was skipped" sh -c "test -s '$T/records.jsonl' && ! grep -q skip_reason '$T/records.jsonl'"
(cd "$T/npm" && node compare.js "$T/records.jsonl" "$AGENT" "$T/tv.conf" \
    conf="$T/mnt/conf/openinference.json" conf="$T/mnt/conf/openllmetry.json" \
    conf="$T/mnt/conf/genai.json" collector="$T/mnt/collector/collector.jsonl") > "$T/compare.out" 2>&1
rc=$?
sed 's/^/# /' "$T/compare.out"
tv_ok "every field of every span matches what its attributes say ($(tail -1 "$T/compare.out" | sed 's/^# //'))" \
    test $rc -eq 0
tv_ok "no raw session or user id and no prompt text left the host" \
    sh -c "! grep -E 'sess-ollm|user-ollm|conv-genai|user-genai|jane.roe|Refunds take' '$T/records.jsonl'"
tv_done
