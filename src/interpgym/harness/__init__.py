"""The research harness: tasks, sandboxed runner, budgets, run store, agents, leaderboard."""
