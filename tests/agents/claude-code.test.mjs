// End to end with the real Claude Code (pinned in package-lock.json) and the real daemon; the model is a fake
// API on loopback (a real one cannot run here). Scenarios: support/scenarios.mjs.

import { defineHostScenarios } from "./support/scenarios.mjs";

defineHostScenarios("claude-code");
defineHostScenarios("claude-code", { transport: "http" });
