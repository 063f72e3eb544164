"""AMQP over TLS (AMQPS) with certificates made at test time by openssl (Warren only: the
reference runs without TLS): pika with an SSL context (PLAIN over TLS; SASL EXTERNAL
with a client certificate whose common name is the user, as RabbitMQ's
rabbitmq_auth_mechanism_ssl), client-certificate verification and
fail_if_no_peer_cert, openssl s_client, the rabbitmq.conf keys, and refusals."""

import os
import socket
import ssl
import subprocess

import pika
import pytest

from conftest import WARREN_BIN, free_port, wait_port


@pytest.fixture(autouse=True)
def warren_only(broker):
    if broker.is_reference:
        pytest.skip("the reference RabbitMQ runs without TLS")


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, a server certificate for 127.0.0.1/localhost, and client certificates for
    CN=guest and CN=nobody, all signed by the CA."""
    d = tmp_path_factory.mktemp("pki")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=Warren test CA",
            "-keyout", "ca.key", "-out", "ca.pem", cwd=d)
    # X.509 v3 extensions (webpki accepts v3 certificates only)
    (d / "server.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                  "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    (d / "client.cnf").write_text("basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n")
    for name, cn, ext in [("server", "localhost", ["-extfile", "server.cnf"]),
                          ("guest", "guest", ["-extfile", "client.cnf"]),
                          ("nobody", "nobody", ["-extfile", "client.cnf"])]:
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/O=Warren tests/CN={cn}",
                "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "2", "-out", f"{name}.pem", *ext, cwd=d)
    return d


class TlsWarren:
    def __init__(self, tmp_path, *extra, config=None):
        self.amqp, self.amqps = free_port(), free_port()
        args = [WARREN_BIN, "--bind", "127.0.0.1", "--amqp-port", str(self.amqp), "--http-port", "0",
                "--mqtt-port", "0", "--stomp-port", "0", "--prometheus-port", "0",
                "--web-mqtt-port", "0", "--web-stomp-port", "0", "--data-dir", str(tmp_path / "data")]
        if config is None:
            args += ["--amqps-port", str(self.amqps), *extra]
        else:
            (tmp_path / "warren.conf").write_text(config.format(amqps=self.amqps))
            args += ["--config", str(tmp_path / "warren.conf")]
        self.log = tmp_path / "warren.log"
        self.proc = subprocess.Popen(args, stdout=open(self.log, "wb"), stderr=subprocess.STDOUT)
        wait_port("127.0.0.1", self.amqp, proc=self.proc)
        wait_port("127.0.0.1", self.amqps, proc=self.proc)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def server_args(pki, *more):
    return ("--tls-cert", str(pki / "server.pem"), "--tls-key", str(pki / "server.key"), *more)


def context(pki, client=None):
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    if client:
        ctx.load_cert_chain(str(pki / f"{client}.pem"), str(pki / f"{client}.key"))
    return ctx


def params(b, pki, client=None, credentials=None):
    kw = dict(host="127.0.0.1", port=b.amqps, connection_attempts=1,
              ssl_options=pika.SSLOptions(context(pki, client), "localhost"))
    if credentials is not None:
        kw["credentials"] = credentials
    return pika.ConnectionParameters(**kw)


def roundtrip(conn):
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, b"over tls")
    assert ch.basic_get(q, auto_ack=True)[2] == b"over tls"


def test_plain_login_over_tls(pki, tmp_path):
    b = TlsWarren(tmp_path, *server_args(pki))
    try:
        conn = pika.BlockingConnection(params(b, pki))
        roundtrip(conn)
        sock = conn._impl._transport._sock
        assert isinstance(sock, ssl.SSLSocket) and sock.version() in ("TLSv1.2", "TLSv1.3")
        conn.close()
        # the plain listener still works beside it
        plain = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", b.amqp, connection_attempts=1))
        roundtrip(plain)
        plain.close()
    finally:
        b.stop()


def test_external_login_with_client_certificate(pki, tmp_path):
    b = TlsWarren(tmp_path, *server_args(pki, "--tls-ca", str(pki / "ca.pem"), "--tls-verify-peer", "true"))
    try:
        conn = pika.BlockingConnection(params(b, pki, "guest", pika.credentials.ExternalCredentials()))
        roundtrip(conn)
        conn.close()
        # a verified certificate whose CN is no user is refused
        with pytest.raises(pika.exceptions.ProbableAuthenticationError) as e:
            pika.BlockingConnection(params(b, pki, "nobody", pika.credentials.ExternalCredentials()))
        assert "Login was refused using authentication mechanism EXTERNAL" in str(e.value)
        # without fail_if_no_peer_cert a client without a certificate may use PLAIN
        conn = pika.BlockingConnection(params(b, pki))
        roundtrip(conn)
        conn.close()
    finally:
        b.stop()
    assert "EXTERNAL login refused: user 'nobody'" in b.log.read_text()


def test_external_is_not_offered_without_a_certificate(pki, tmp_path):
    b = TlsWarren(tmp_path, *server_args(pki))
    try:
        with pytest.raises(pika.exceptions.AMQPConnectionError):
            pika.BlockingConnection(params(b, pki, None, pika.credentials.ExternalCredentials()))
        roundtrip(pika.BlockingConnection(params(b, pki)))
    finally:
        b.stop()


def test_fail_if_no_peer_cert(pki, tmp_path):
    b = TlsWarren(tmp_path, *server_args(pki, "--tls-ca", str(pki / "ca.pem"), "--tls-verify-peer", "true",
                                         "--tls-fail-if-no-peer-cert", "true"))
    try:
        with pytest.raises(pika.exceptions.AMQPConnectionError):
            pika.BlockingConnection(params(b, pki))
        # a certificate from another CA is refused as well
        other = tmp_path / "other"
        other.mkdir()
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=guest",
                "-keyout", "guest.key", "-out", "guest.pem", cwd=other)
        ctx = context(pki)
        ctx.load_cert_chain(str(other / "guest.pem"), str(other / "guest.key"))
        with pytest.raises(pika.exceptions.AMQPConnectionError):
            pika.BlockingConnection(pika.ConnectionParameters(
                "127.0.0.1", b.amqps, connection_attempts=1, ssl_options=pika.SSLOptions(ctx, "localhost")))
        roundtrip(pika.BlockingConnection(params(b, pki, "guest")))
    finally:
        b.stop()


def test_openssl_s_client_and_plain_bytes(pki, tmp_path):
    b = TlsWarren(tmp_path, *server_args(pki))
    try:
        r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{b.amqps}", "-CAfile",
                            str(pki / "ca.pem"), "-verify_return_error", "-servername", "localhost"],
                           input=b"AMQP\x00\x00\x09\x01", capture_output=True, timeout=20)
        out = r.stdout.decode(errors="replace")
        assert "Verify return code: 0 (ok)" in out, out[-2000:]
        assert "CN = localhost" in out
        # an AMQP client speaking plain TCP to the TLS port gets no AMQP; others are unaffected
        s = socket.create_connection(("127.0.0.1", b.amqps), timeout=5)
        s.sendall(b"AMQP\x00\x00\x09\x01")
        s.settimeout(5)
        try:
            data = s.recv(100)
        except (ConnectionResetError, socket.timeout):
            data = b""
        assert not data.startswith(b"\x01\x00\x00"), "an AMQP frame in clear text"
        s.close()
        roundtrip(pika.BlockingConnection(params(b, pki)))
    finally:
        b.stop()


def test_rabbitmq_conf_keys(pki, tmp_path):
    conf = f"""
listeners.ssl.default = {{amqps}}
ssl_options.certfile = {pki / 'server.pem'}
ssl_options.keyfile = {pki / 'server.key'}
ssl_options.cacertfile = {pki / 'ca.pem'}
ssl_options.verify = verify_peer
ssl_options.fail_if_no_peer_cert = true
"""
    b = TlsWarren(tmp_path, config=conf)
    try:
        roundtrip(pika.BlockingConnection(params(b, pki, "guest", pika.credentials.ExternalCredentials())))
        with pytest.raises(pika.exceptions.AMQPConnectionError):
            pika.BlockingConnection(params(b, pki))
    finally:
        b.stop()


@pytest.mark.parametrize("args, message", [
    (("--tls-cert", "/nonexistent.pem", "--tls-key", "/nonexistent.key"), "TLS: cannot read /nonexistent.pem"),
    (("--tls-cert", "CERT"), "TLS needs both --tls-cert and --tls-key"),
    (("--tls-cert", "CERT", "--tls-key", "CAKEY"), "certificate and key do not go together"),
    (("--tls-cert", "CERT", "--tls-key", "KEY", "--tls-verify-peer", "true"), "needs ssl_options.cacertfile"),
])
def test_bad_tls_settings_refuse_to_start(pki, tmp_path, args, message):
    subst = {"CERT": str(pki / "server.pem"), "KEY": str(pki / "server.key"), "CAKEY": str(pki / "ca.key")}
    args = [subst.get(a, a) for a in args]
    r = subprocess.run([WARREN_BIN, "--amqp-port", "0", "--amqps-port", str(free_port()), "--http-port", "0",
                        "--mqtt-port", "0", "--stomp-port", "0", "--prometheus-port", "0", "--web-mqtt-port", "0",
                        "--web-stomp-port", "0", "--data-dir", str(tmp_path / "d"), *args],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode != 0
    assert message in r.stderr, r.stderr
