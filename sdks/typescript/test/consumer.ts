// Type-checked (tsc --noEmit) against the packed and installed package and the pinned frameworks:
// the .d.ts files of the artefact fit each framework's own types. Never run.

import { Agent, run, tool as agentTool } from "@openai/agents";
import { Gatehouse, type Decision, ActionRejected, guarded } from "@gatehouse/sdk";
import { gatehouseToolApproval, guardTools } from "@gatehouse/sdk/ai";
import { gatehouseMiddleware } from "@gatehouse/sdk/langchain";
import { applyGatehouseDecisions, guardAgent } from "@gatehouse/sdk/openai-agents";
import { generateText, tool as aiTool } from "ai";
import type { LanguageModel } from "ai";
import { createAgent, tool as lcTool } from "langchain";
import { z } from "zod";

export async function examples(model: LanguageModel): Promise<void> {
  const gate = new Gatehouse({ sessionId: "conversation-1" });
  const decision: Decision = await gate.check("Bash", { command: "ls" }, { toolUseId: "t1", wait: false });
  if (!decision.allowed) throw new ActionRejected(decision.reason, decision.actionId);
  const send = guarded(async (to: string): Promise<string> => `sent to ${to}`, { tool: "send_email", client: gate });
  const sent: string = await send("a@example.com");
  void sent;

  const weather = agentTool({ name: "get_weather", description: "w", parameters: z.object({ city: z.string() }), execute: async ({ city }) => city });
  const agent = guardAgent(new Agent({ name: "ops", tools: [weather] }), gate);
  let result = await run(agent, "hi");
  while (result.interruptions.length > 0) result = await run(agent, await applyGatehouseDecisions(result.state, gate));

  const tools = { get_weather: aiTool({ description: "w", inputSchema: z.object({ city: z.string() }), execute: async ({ city }) => city }) };
  await generateText({ model, tools: guardTools(tools, gate), toolApproval: gatehouseToolApproval(gate), prompt: "hi" });

  const lcWeather = lcTool(async ({ city }: { city: string }) => city, { name: "get_weather", description: "w", schema: z.object({ city: z.string() }) });
  createAgent({ model: "openai:gpt-5", tools: [lcWeather], middleware: [gatehouseMiddleware(gate)] });
}
