LIB_PKGS += libsodium jansson
# make bench-agent: the agent's feed benchmark (1M-name snapshot, 10k-entry deltas over
# loopback HTTP to the real agent and dnsd); results in tests/bench/results/agent.*
.PHONY: bench-agent
bench-agent: $(BIN)/otasuke-agent $(BIN)/otasuke-dnsd $(BIN)/otasukectl
	@BUILD=$(BUILD) tests/bench/agent/run.sh
# make bench-agent-hub: the agent applying a 1M-entry snapshot from a real hubd (--hub,
# loopback HTTPS); AGENT_BEFORE=PATH adds another agent build. Section "Hub feed" of agent.md
.PHONY: bench-agent-hub
bench-agent-hub: $(BIN)/otasuke-agent $(BIN)/otasuke-hubd $(BIN)/otasukectl
	@BUILD=$(BUILD) tests/bench/agent/hub.sh
