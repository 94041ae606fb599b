#!/usr/bin/python3
# ingest-pb.py - hand-made OTLP protobuf bodies for the gateway's tests (the
# wire format written out field by field, so a test can build what no SDK
# would send).
#   ingest-pb.py deep N             a span whose attribute nests N arrays
#   ingest-pb.py badutf8 CANARY     two spans; the second's name is not UTF-8
#   ingest-pb.py spans N CANARY     N valid GenAI spans (random ids)
#   ingest-pb.py partial FILE       print rejected_spans of an
#                                   ExportTraceServiceResponse (0 if absent)
import os
import sys


def varint(n):
    out = b''
    while True:
        b = n & 0x7f
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def ld(field, payload):
    return varint(field << 3 | 2) + varint(len(payload)) + payload


def fixed64(field, n):
    return varint(field << 3 | 1) + n.to_bytes(8, 'little')


def attr(key, value):
    return ld(1, key.encode()) + ld(2, ld(1, value))


def span(name, canary, tid=None, sid=None):
    return (ld(1, tid or os.urandom(16)) + ld(2, sid or os.urandom(8)) + ld(5, name) +
            fixed64(7, 1763790000000000000) + fixed64(8, 1763790001000000000) +
            ld(9, attr('gen_ai.operation.name', b'chat')) +
            ld(9, attr('gen_ai.request.model', b'gpt-4o')) +
            ld(9, attr('gen_ai.prompt', ('question ' + canary).encode())))


def request(spans):
    scope = ld(1, ld(1, b'test'))
    return ld(1, ld(2, scope + b''.join(ld(2, s) for s in spans)))


def read_varint(b, i):
    x = shift = 0
    while True:
        c = b[i]
        i += 1
        x |= (c & 0x7f) << shift
        shift += 7
        if not c & 0x80:
            return x, i


cmd = sys.argv[1]
out = sys.stdout.buffer
if cmd == 'deep':
    v = ld(1, b'x')
    for _ in range(int(sys.argv[2])):
        v = ld(5, ld(1, v))
    s = ld(1, b'\x01' * 16) + ld(2, b'\x02' * 8) + ld(9, ld(1, b'k') + ld(2, v))
    out.write(request([s]))
elif cmd == 'badutf8':
    out.write(request([span(b'good', sys.argv[2]), span(b'bad \xff\xfe name', sys.argv[2])]))
elif cmd == 'spans':
    out.write(request([span(b'chat', sys.argv[3]) for _ in range(int(sys.argv[2]))]))
elif cmd == 'partial':
    b = open(sys.argv[2], 'rb').read()
    rejected = 0
    if b[:1] == b'\x0a':
        n, i = read_varint(b, 1)
        ps = b[i:i + n]
        j = 0
        while j < len(ps):
            key, j = read_varint(ps, j)
            if key == 0x08:
                rejected, j = read_varint(ps, j)
            else:
                ln, j = read_varint(ps, j)
                j += ln
    print(rejected)
else:
    sys.exit('usage: ingest-pb.py deep N | badutf8 C | spans N C | partial FILE')
