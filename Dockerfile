# Centric: one static binary on a distroless, non-root base.
# Build: docker build -t centric .   Run: see docker-compose.yml (set DATABASE_URL).

FROM golang:1.26-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-mod=readonly
# Dependencies first, so code changes reuse this layer.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN go build -trimpath -ldflags='-s -w' -o /out/centric ./cmd/centric

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/centric /centric
USER nonroot:nonroot
ENV CENTRIC_ADDR=:8080
EXPOSE 8080
ENTRYPOINT ["/centric"]
CMD ["serve"]
