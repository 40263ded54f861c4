"""Framework adapters: `openai_agents` (OpenAI Agents SDK) and `langchain` (LangChain 1.x / LangGraph).
Each imports its framework lazily, so `import gatehouse` needs neither."""
