"""Built-in offline agents: calculator, clock and text (pure logic, no LLM, no network)."""
