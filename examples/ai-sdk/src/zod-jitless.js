// The AI SDK validates with zod, which probes `new Function` for a faster path as its schemas are made: under
// a policy without 'unsafe-eval' that probe is a violation the browser reports (zod catches it and goes on).
// jitless: zod never tries. Imported before "ai", so it is set before the AI SDK's schemas are made.
import { config } from "zod";

config({ jitless: true });
