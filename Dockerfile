# Warren in a container: build with the Rust toolchain, run from a slim Debian image as a
# non-root user. Same ports as the rabbitmq:4-management image for what Warren serves
# (AMQP 5672, AMQPS 5671, management 15672, HTTPS management 15671, Prometheus 15692),
# plus MQTT 1883, MQTTS 8883, STOMP 61613, STOMP over TLS 61614, Web-STOMP 15674 and
# Web-MQTT 15675 (RabbitMQ's plugin ports). The TLS ports listen only once a certificate
# is configured (ssl_options.* in the config file).
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
EXPOSE 5671 5672 15671 15672 15692 1883 8883 61613 61614 15674 15675
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/warren"]
