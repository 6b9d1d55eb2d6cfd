# tunneld — see README.md.
GO        ?= go
STATICCHECK = honnef.co/go/tools/cmd/staticcheck@v0.8.2
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
GOFLAGS_BUILD := -trimpath -ldflags='$(LDFLAGS)'

.PHONY: all build test test-unit test-priv lint clean

all: build

## build: the host binary ./tunneld
build:
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -o tunneld ./cmd/tunneld

## test: unit tests, then the privileged host tests (root only)
test: test-unit test-priv

test-unit:
	$(GO) test ./...

# Privileged tests create their own network namespaces; they never touch the
# host's. Without root they skip with a reason.
test-priv:
	@if [ "$$(id -u)" = 0 ]; then \
		TUNNELD_PRIVILEGED=1 $(GO) test -count=1 ./pkg/...; \
	else echo "test-priv: not root, privileged tests skipped"; fi

## lint: gofmt, go vet, staticcheck
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

clean:
	rm -rf tunneld dist
