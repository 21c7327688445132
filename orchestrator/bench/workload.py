"""What the bench asks, and of which agents: one clause, one step per conversation.

The agents themselves are ordinary SDK agents in ``switchboard.agents.bench``;
the bench starts them by name in their own process (``switchboard agent
SPEC``), so this package never imports the agents package.
"""

from __future__ import annotations

__all__ = [
    "DELAY_ENV",
    "MESSAGE",
    "NEEDS_INPUT",
    "NOOP",
    "NOOP_SPEC",
    "SLEEPER",
    "SLEEPER_SPEC",
    "TWO_ROUNDS",
]

NOOP = "noop"
SLEEPER = "sleeper"
#: ``switchboard agent`` specs of the two bench agents.
NOOP_SPEC = f"switchboard.agents.bench:{NOOP}"
SLEEPER_SPEC = f"switchboard.agents.bench:{SLEEPER}"
#: What the bench asks: one clause, matched by both agents' keyword.
MESSAGE = "benchmark ping 17"
#: Seconds the sleeper agent waits (simulated model latency); default 1.
DELAY_ENV = "SWITCHBOARD_BENCH_DELAY"
#: Words that make the noop agent refuse a step with no input (an unclear input).
NEEDS_INPUT = "the result"
#: A two-round conversation: round 1 runs both clauses at once, and the first, which
#: needs the second's output, fails; round 2 runs it again with that output
#: (``engine.adapt``'s "fill from another step").
TWO_ROUNDS = f"benchmark {NEEDS_INPUT}; {MESSAGE}"
