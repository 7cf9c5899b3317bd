# Builds the portcullis binary and runs it on a slim Debian image.
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends pkg-config libpq-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Every target Cargo.toml names must be present for cargo to read the manifest.
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY templates templates
COPY static static
COPY migrations migrations
COPY tests tests
COPY benches benches
RUN cargo build --release --locked --bin portcullis

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libpq5 ca-certificates && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/portcullis --create-home portcullis \
    && mkdir -p /var/lib/portcullis/data && chown -R portcullis:portcullis /var/lib/portcullis
COPY --from=build /src/target/release/portcullis /usr/local/bin/portcullis
USER portcullis
WORKDIR /var/lib/portcullis
# The default SQLite database lives here when no PostgreSQL URL is given.
VOLUME /var/lib/portcullis/data
ENV PORTCULLIS_BIND=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["portcullis"]
CMD ["serve"]
