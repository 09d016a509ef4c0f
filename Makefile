# kubelab — see README.md. Every target that needs Debian packages installs
# them first (make deps), so a fresh machine needs only Go and root.

SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
GO ?= go
BIN := _out/bin
REPORT := _out/report
KUBELAB := $(BIN)/kubelab

.PHONY: all build run test unit race conformance bench lint deps clean images critest bench-runtime bench-apiserver bench-scheduler mutation

all: build

## deps: install missing Debian packages (idempotent, quiet when all present)
deps:
	@tools/deps/install.sh

## build: the kubelab binary in _out/bin
build:
	@mkdir -p $(BIN)
	$(GO) build -o $(KUBELAB) ./tools/kubelab

## images: the test images as OCI archives in _out/images (pause, workload, webserver, busybox .tar),
## byte-for-byte reproducible; import them with `kubelab runtime import` or `ctr images import`
images: deps build
	CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=false -ldflags='-s -w' -o $(BIN)/workload ./tools/workload
	$(KUBELAB) image build --workload $(BIN)/workload --out _out/images

## run: the main job — conformance of every built-in plugin, printing the matrix
run: deps build images
	$(KUBELAB) conform --report $(REPORT) --junit _out/junit.xml

## test: unit tests, then every conformance suite against every built-in plugin
test: deps lint images unit conformance

## unit: every package's tests, then the race detector on the quick packages with concurrency
unit: images
	$(GO) test -count=1 -timeout 20m ./...
	$(GO) test -count=1 -race -timeout 20m $(RACE_QUICK)

# RACE_QUICK are raced in `make unit` (CI): about 80 s on 2 cores (35 s of it
# plugins/runtime/process, where the race detector found a real bug).
RACE_QUICK := ./spec/... ./plugins/store/memory/... ./conformance/runner/... ./plugins/runtime/process/...
# RACE_PKGS are every package that starts goroutines (or whose tests run
# concurrent code in-process); `make race` runs them all, one at a time
# (race builds are heavy): about 10 minutes on 2 cores, too long for CI.
RACE_PKGS := ./spec/... ./conformance/harness ./fakes/... ./plugins/runtime/... ./plugins/scheduler/pluginhelper \
	./plugins/store/memory ./plugins/store/etcd ./conformance/runner/... ./conformance/etcdserver ./conformance/store \
	./conformance/apiserver ./conformance/scheduler ./conformance/runtime ./conformance/containerd \
	./reference/apiserver/... ./reference/scheduler ./tools/workload ./tools/schedbench ./tools/kubelab/... ./tools/critools

## mutation: the mutation score of one suite against one reference plugin (tools/mutation), opt-in, never in CI:
## each mutant is a build of the binary with -overlay plus a run of the suite. Defaults: the store suite against
## plugins/store/memory, a sample of 30 (MUTATION_SAMPLE=0 for every mutant); report in _out/mutation
MUTATION_SUITE ?= store
MUTATION_TARGET ?= memory
MUTATION_PKG ?= plugins/store/memory
MUTATION_SAMPLE ?= 30
MUTATION_SEED ?= 1
mutation: deps
	$(GO) run ./tools/mutation --suite $(MUTATION_SUITE) --target $(MUTATION_TARGET) --pkg $(MUTATION_PKG) \
		--sample $(MUTATION_SAMPLE) --seed $(MUTATION_SEED) --out _out/mutation

## race: the race detector on every package with concurrency (-short: without the suites' meta-tests), opt-in
race: deps images
	@set -e; for p in $(RACE_PKGS); do $(GO) test -count=1 -race -short -timeout 25m $$p; done

conformance: build images
	$(KUBELAB) conform --report $(REPORT) --junit _out/junit.xml

## bench: Go benchmarks (store plugins side by side; etcd data on tmpfs; API server creates, LIST, watch fan-out)
bench:
	$(GO) test -run '^$$' -bench . -benchmem -timeout 30m ./plugins/store/... ./reference/apiserver/ ./reference/apiserver/apiserverbench/

## critest: CRI's own validation suite (cri-tools v1.37.0, built from the module cache) — its
## [Conformance] specs against the process runtime and containerd, held to the known failures (README.md)
critest: deps
	KUBELAB_CRITEST=1 $(GO) test -count=1 -v -run TestCritestConformance -timeout 30m ./tools/critools

## bench-apiserver: pod creates from 16 clients, LIST of 10 000 pods, watch delivery to 1 000 watchers,
## kubelab's API server on the memory and etcd stores (data on tmpfs); --kubeconfig for any other server
bench-apiserver: build
	$(KUBELAB) bench apiserver --json _out/bench-apiserver.json

## bench-runtime: pod start/stop latency and memory per pod, process runtime vs containerd (100 pods)
bench-runtime: images
	$(KUBELAB) bench runtime --pods 100 --images _out/images

## bench-scheduler: the scheduler_perf-shaped workloads of tools/schedbench/workloads.yaml (quick sizes),
## kubelab's default profile; add SCHED_TARGETS="--target upstream=/path/kube-scheduler" to compare
bench-scheduler: build
	$(KUBELAB) bench scheduler --target default-scheduler $(SCHED_TARGETS) --qps 1000 --json _out/bench-scheduler.json

## lint: gofmt, go vet, doc comments, and imports that point one way (tools/archcheck)
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [[ -n "$$out" ]]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run ./tools/doccheck .
	$(GO) run ./tools/archcheck .

clean:
	rm -rf _out
