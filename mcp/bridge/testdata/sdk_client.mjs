// Drives the agentauth bridge with the official MCP TypeScript SDK client.
// Usage: node sdk_client.mjs URL (run with the npm project as cwd).
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.join(process.cwd(), "package.json"));
const { Client } = await import(require.resolve("@modelcontextprotocol/sdk/client/index.js"));
const { StreamableHTTPClientTransport } = await import(
  require.resolve("@modelcontextprotocol/sdk/client/streamableHttp.js"));

const client = new Client({ name: "agentauth-e2e", version: "1.0.0" });
await client.connect(new StreamableHTTPClientTransport(new URL(process.argv[2])));

const tools = await client.listTools();
console.log("tools: " + tools.tools.map((t) => t.name).sort().join(","));

const echo = await client.callTool({ name: "everything__echo", arguments: { message: "hello from node" } });
console.log("echo: " + echo.content.map((c) => c.text).join("").replace(/^Echo: /, ""));

try {
  await client.callTool({ name: "everything__get-sum", arguments: { a: 1, b: 2 } });
  console.log("denied: no");
} catch (e) {
  console.log("denied: " + e.code + " " + (e.data && e.data.reason));
}

let progress = 0;
await client.callTool(
  { name: "everything__trigger-long-running-operation", arguments: { duration: 0.3, steps: 3 } },
  undefined,
  { onprogress: () => { progress++; } },
);
console.log("progress: " + progress);
await client.close();
