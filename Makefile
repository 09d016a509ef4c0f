# kubelab — see README.md. Every target that needs Debian packages installs
# them first (make deps), so a fresh machine needs only Go and root.

SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
GO ?= go
BIN := _out/bin
REPORT := _out/report
KUBELAB := $(BIN)/kubelab

.PHONY: all build run test unit conformance bench lint deps clean images critest bench-runtime bench-apiserver bench-scheduler

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
test: deps lint unit conformance

unit:
	$(GO) test -count=1 -timeout 20m ./...
	$(GO) test -count=1 -race -timeout 20m ./spec/... ./plugins/store/memory/... ./conformance/runner/...

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
