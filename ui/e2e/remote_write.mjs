// A minimal Prometheus remote-write 1.0 client for the browser tests:
// hand-encoded protobuf WriteRequest, snappy block format with literals only
// (valid snappy, just not compressed).

function varint(n, out) {
  let v = BigInt(n);
  if (v < 0n) v += 1n << 64n;
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
}

function field(num, wire, out) {
  varint((num << 3) | wire, out);
}

function bytesField(num, bytes, out) {
  field(num, 2, out);
  varint(bytes.length, out);
  for (const b of bytes) out.push(b);
}

const enc = new TextEncoder();

/** series: [{ labels: {name: value}, samples: [[ms, value], ...] }] */
export function encodeWriteRequest(series) {
  const out = [];
  for (const s of series) {
    const ts = [];
    for (const name of Object.keys(s.labels).sort()) {
      const l = [];
      bytesField(1, enc.encode(name), l);
      bytesField(2, enc.encode(s.labels[name]), l);
      bytesField(1, l, ts);
    }
    for (const [t, v] of s.samples) {
      const smp = [];
      field(1, 1, smp);
      const buf = Buffer.alloc(8);
      buf.writeDoubleLE(v);
      smp.push(...buf);
      field(2, 0, smp);
      varint(t, smp);
      bytesField(2, smp, ts);
    }
    bytesField(1, ts, out);
  }
  return Uint8Array.from(out);
}

export function snappyLiteral(data) {
  const out = [];
  varint(data.length, out);
  for (let i = 0; i < data.length; i += 65536) {
    const chunk = data.subarray(i, Math.min(data.length, i + 65536));
    const n = chunk.length - 1;
    out.push(61 << 2, n & 0xff, (n >> 8) & 0xff);
    for (const b of chunk) out.push(b);
  }
  return Uint8Array.from(out);
}

export async function remoteWrite(url, series) {
  const body = snappyLiteral(encodeWriteRequest(series));
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/x-protobuf',
      'Content-Encoding': 'snappy',
      'X-Prometheus-Remote-Write-Version': '0.1.0',
    },
    body,
    signal: AbortSignal.timeout(60_000),
  });
  if (res.status !== 204) throw new Error(`remote write: ${res.status} ${await res.text()}`);
}
