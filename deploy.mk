# deploy-check: the deployment checks of issue 5 on their own (docker-compose.yml,
# the Dockerfiles, k8s/ rendered by kustomize and validated against the Kubernetes
# OpenAPI schemas, HEALTHCHECK and probe paths against the real services). `make test`
# runs the same suite (tests/deploy/suite.sh) with every other one.
deploy-check: deps
	$(MAKE) -j2 $(BIN)/backend-api $(BIN)/ws-gateway $(BIN)/devbroker
	TASKSYNC_PLAIN_BIN=$(CURDIR)/$(BIN) tests/deploy/suite.sh
