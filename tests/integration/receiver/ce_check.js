// ce_check.js — the CloudEvents side of the reporting tests: every request
// the receiver recorded (requests.jsonl) is handed to the official
// CloudEvents SDK (npm "cloudevents", HTTP.toEvent), which decides whether it
// is a structured or binary event, parses it, and validates it
// (event.validate() throws on a non-conformant event). Prints one JSON line
// per request: {n, mode, ok, id, type, source, time, datacontenttype, seq,
// state, error}. Usage: node ce_check.js NODE_MODULES_DIR requests.jsonl
const path = require("path");
const fs = require("fs");
const { HTTP } = require(path.join(process.argv[2], "cloudevents"));
const lines = fs.readFileSync(process.argv[3], "utf8").split("\n").filter(Boolean);
for (const line of lines) {
  const rec = JSON.parse(line);
  const out = { n: rec.n, ok: false };
  try {
    const ct = rec.headers["content-type"] || "";
    out.mode = ct.startsWith("application/cloudevents+json") ? "structured"
      : rec.headers["ce-specversion"] ? "binary" : "none";
    const ev = HTTP.toEvent({ headers: rec.headers, body: rec.body });
    const e = Array.isArray(ev) ? ev[0] : ev;
    e.validate();
    let data = e.data;
    if (typeof data === "string") data = JSON.parse(data);
    Object.assign(out, { ok: true, id: e.id, type: e.type, source: e.source, time: e.time,
      specversion: e.specversion, datacontenttype: e.datacontenttype, subject: e.subject,
      seq: data && data.seq, state: data && data.state, device_id: data && data.device_id });
  } catch (err) {
    out.error = String(err && (err.message || err)) + (err && err.errors ? " " + JSON.stringify(err.errors) : "");
  }
  console.log(JSON.stringify(out));
}
