module github.com/agentauth/agentauth/tools/spire

go 1.26.8
