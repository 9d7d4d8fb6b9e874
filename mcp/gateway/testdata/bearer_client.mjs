// Calls the gateway with a JWT-SVID bearer token using the official MCP
// TypeScript SDK client. Usage: node bearer_client.mjs URL TOKEN (run with
// the npm project as cwd and NODE_EXTRA_CA_CERTS naming the gateway's CA).
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.join(process.cwd(), "package.json"));
const { Client } = await import(require.resolve("@modelcontextprotocol/sdk/client/index.js"));
const { StreamableHTTPClientTransport } = await import(
  require.resolve("@modelcontextprotocol/sdk/client/streamableHttp.js"));

const [url, token] = process.argv.slice(2);
const client = new Client({ name: "agentauth-bearer", version: "1.0.0" });
await client.connect(new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { Authorization: "Bearer " + token } },
}));

const tools = await client.listTools();
console.log("tools: " + tools.tools.map((t) => t.name).sort().join(","));
const res = await client.callTool({ name: "calc__add", arguments: { a: 1 } });
console.log("add: " + res.content.map((c) => c.text).join(""));
try {
  await client.callTool({ name: "fs__write", arguments: { path: "/granted/x" } });
  console.log("write: allowed");
} catch (e) {
  console.log("write: " + e.code + " " + (e.data && e.data.reason));
}
await client.close();
