// fauxqs (the npm SNS/SQS emulator) on loopback only: its own CLI listens on every
// interface. Usage: node local/fauxqs.mjs <path of fauxqs's dist/app.js> PORT
import { pathToFileURL } from "node:url";

const [app, port] = process.argv.slice(2);
const { buildApp } = await import(pathToFileURL(app).href);
const server = buildApp({ logger: false });
await server.listen({ port: Number(port), host: "127.0.0.1" });
