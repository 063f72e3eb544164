# Warren in a container: build with the Rust toolchain, run from a slim Debian image as a
# non-root user. Same ports as the rabbitmq:4-management image for what Warren serves
# (AMQP 5672, AMQPS 5671, management 15672, Prometheus 15692), plus MQTT 1883,
# STOMP 61613, Web-STOMP 15674 and Web-MQTT 15675 (RabbitMQ's plugin ports).
#
#   docker build -t warren .
#   docker run -p 5672:5672 -p 15672:15672 -v warren-data:/var/lib/warren warren

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p warren -p warrenctl

FROM debian:bookworm-slim
RUN useradd --system --uid 999 --user-group --home-dir /var/lib/warren warren \
    && mkdir -p /var/lib/warren /etc/warren \
    && chown warren:warren /var/lib/warren
COPY --from=build /src/target/release/warren /src/target/release/warrenctl /usr/local/bin/
COPY packaging/docker.conf /etc/warren/warren.conf
USER warren
ENV WARREN_CONFIG=/etc/warren/warren.conf \
    WARREN_DATA_DIR=/var/lib/warren
VOLUME /var/lib/warren
EXPOSE 5671 5672 15672 15692 1883 61613 15674 15675
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/warren"]
