"""TLS on every listener, with certificates made at test time by openssl (Warren only: the
reference runs without TLS):
- AMQPS: pika with an SSL context (PLAIN over TLS; SASL EXTERNAL with a client certificate
  whose common name is the user, as RabbitMQ's rabbitmq_auth_mechanism_ssl);
- the management API over HTTPS (requests, verifying against the test CA), with its own
  certificate and client-certificate settings (management.ssl.*) or the broker's;
- MQTTS (paho-mqtt with tls_set) and STOMP over TLS (stomp.py with set_ssl), including
  RabbitMQ's ssl_cert_login (the certificate's common name as the user);
- client-certificate verification and fail_if_no_peer_cert, openssl s_client on every TLS
  port, the listeners in /api/overview, the rabbitmq.conf keys, and refusals."""

import os
import queue
import socket
import ssl
import subprocess
import time
import uuid

import paho.mqtt.client as mqtt
import pika
import pytest
import requests
import stomp

from conftest import WARREN_BIN, free_port, wait_port


@pytest.fixture(autouse=True)
def warren_only(broker):
    if broker.is_reference:
        pytest.skip("the reference RabbitMQ runs without TLS")


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, two server certificates for 127.0.0.1/localhost (CN=localhost for the broker,
    CN=management.localhost for HTTPS of its own), and client certificates for CN=guest
    and CN=nobody, all signed by the CA."""
    d = tmp_path_factory.mktemp("pki")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=Warren test CA",
            "-keyout", "ca.key", "-out", "ca.pem", cwd=d)
    # X.509 v3 extensions (webpki accepts v3 certificates only)
    (d / "server.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                  "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    (d / "client.cnf").write_text("basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n")
    for name, cn, ext in [("server", "localhost", ["-extfile", "server.cnf"]),
                          ("mgmt", "management.localhost", ["-extfile", "server.cnf"]),
                          ("guest", "guest", ["-extfile", "client.cnf"]),
                          ("nobody", "nobody", ["-extfile", "client.cnf"])]:
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/O=Warren tests/CN={cn}",
                "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "2", "-out", f"{name}.pem", *ext, cwd=d)
    return d


class TlsWarren:
    """A private Warren on free ports: every TLS listener (AMQPS, HTTPS, MQTTS, STOMP
    over TLS) and its plain counterpart. With `config`, a rabbitmq.conf template
    ({amqps}, {https}, {mqtts}, {stomps} are the TLS ports) sets the TLS listeners."""

    TLS = ("amqps", "https", "mqtts", "stomps")

    def __init__(self, tmp_path, *extra, config=None, expect=TLS):
        self.amqp, self.http, self.mqtt, self.stomp = (free_port() for _ in range(4))
        self.amqps, self.https, self.mqtts, self.stomps = (free_port() for _ in range(4))
        args = [WARREN_BIN, "--bind", "127.0.0.1", "--amqp-port", str(self.amqp),
                "--http-port", str(self.http), "--mqtt-port", str(self.mqtt),
                "--stomp-port", str(self.stomp), "--prometheus-port", "0",
                "--web-mqtt-port", "0", "--web-stomp-port", "0", "--data-dir", str(tmp_path / "data")]
        if config is None:
            for k in self.TLS:
                args += [f"--{k}-port", str(getattr(self, k))]
            args += list(extra)
        else:
            (tmp_path / "warren.conf").write_text(config.format(
                **{k: getattr(self, k) for k in self.TLS}))
            args += ["--config", str(tmp_path / "warren.conf"), *extra]
        self.log = tmp_path / "warren.log"
        self.proc = subprocess.Popen(args, stdout=open(self.log, "wb"), stderr=subprocess.STDOUT)
        for port in [self.amqp, self.http, self.mqtt, self.stomp] + [getattr(self, k) for k in expect]:
            wait_port("127.0.0.1", port, proc=self.proc)

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
management.ssl.port = {{https}}
management.ssl.certfile = {pki / 'mgmt.pem'}
management.ssl.keyfile = {pki / 'mgmt.key'}
management.ssl.cacertfile = {pki / 'ca.pem'}
management.ssl.verify = verify_peer
management.ssl.fail_if_no_peer_cert = false
mqtt.listeners.ssl.default = {{mqtts}}
mqtt.ssl_cert_login = true
stomp.listeners.ssl.default = {{stomps}}
stomp.ssl_cert_login = true
"""
    b = TlsWarren(tmp_path, config=conf)
    try:
        roundtrip(pika.BlockingConnection(params(b, pki, "guest", pika.credentials.ExternalCredentials())))
        with pytest.raises(pika.exceptions.AMQPConnectionError):
            pika.BlockingConnection(params(b, pki))
        # HTTPS: its own certificate; a client certificate asked for, not required
        assert server_cn(b.https, pki) == "management.localhost"
        assert https(b, pki, "/api/overview").status_code == 200
        # MQTTS and STOMP over TLS: the broker's verification, and the certificate login
        c = MqttTls(b, pki, client="guest", username=None)
        assert c.rc == 0
        c.close()
        with pytest.raises(OSError):
            MqttTls(b, pki)
        s = StompTls(b, pki, client="guest", login=None)
        s.close()
    finally:
        b.stop()


@pytest.mark.parametrize("args, message", [
    (("--tls-cert", "/nonexistent.pem", "--tls-key", "/nonexistent.key"), "TLS: cannot read /nonexistent.pem"),
    (("--tls-cert", "CERT"), "TLS needs both --tls-cert and --tls-key"),
    (("--tls-cert", "CERT", "--tls-key", "CAKEY"), "certificate and key do not go together"),
    (("--tls-cert", "CERT", "--tls-key", "KEY", "--tls-verify-peer", "true"), "needs a CA certificate file (cacertfile)"),
])
def test_bad_tls_settings_refuse_to_start(pki, tmp_path, args, message):
    subst = {"CERT": str(pki / "server.pem"), "KEY": str(pki / "server.key"), "CAKEY": str(pki / "ca.key"),
             "NOKEY": "/nonexistent.key", "PORT": str(free_port())}
    args = [subst.get(a, a) for a in args]
    ports = []
    for flag in ("--amqps-port", "--https-port", "--mqtts-port", "--stomps-port"):
        if flag not in args:
            ports += [flag, str(free_port())]
    r = subprocess.run([WARREN_BIN, "--amqp-port", "0", "--http-port", "0", "--bind", "127.0.0.1",
                        "--mqtt-port", "0", "--stomp-port", "0", "--prometheus-port", "0", "--web-mqtt-port", "0",
                        "--web-stomp-port", "0", "--data-dir", str(tmp_path / "d"), *ports, *args],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode != 0
    assert message in r.stderr, r.stderr


# ------------------------------------------------------------------ HTTPS, MQTTS, STOMPS

def https(b, pki, path, client=None, port=None):
    cert = (str(pki / f"{client}.pem"), str(pki / f"{client}.key")) if client else None
    return requests.get(f"https://localhost:{port or b.https}{path}", auth=("guest", "guest"),
                        verify=str(pki / "ca.pem"), cert=cert, timeout=10)


def server_cn(port, pki):
    """The common name of the certificate the server on `port` presents."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context(pki).wrap_socket(raw, server_hostname="localhost") as s:
            subject = dict(x[0] for x in s.getpeercert()["subject"])
            return subject["commonName"]


class MqttTls:
    """paho-mqtt over TLS (tls_set with the test CA): connects and waits for the CONNACK
    (`rc`, an MQTT 3.1.1 return code). A refused handshake raises an OSError (ssl.SSLError
    from connect, or ConnectionError when TLS 1.3 reports it after the client's side)."""

    def __init__(self, b, pki, client=None, username="guest", password="guest"):
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"tls-{uuid.uuid4().hex[:8]}",
                             protocol=mqtt.MQTTv311)
        cert = dict(certfile=str(pki / f"{client}.pem"), keyfile=str(pki / f"{client}.key")) if client else {}
        self.c.tls_set(ca_certs=str(pki / "ca.pem"), **cert)
        if username is not None:
            self.c.username_pw_set(username, password)
        self.connack, self.messages = queue.Queue(), queue.Queue()
        self.c.on_connect = lambda c, u, flags, rc, props: self.connack.put(rc)
        # a connection closed before any CONNACK (a handshake the server refused)
        self.c.on_disconnect = lambda c, u, flags, rc, props: self.connack.put(None)
        self.c.on_message = lambda c, u, msg: self.messages.put(msg)
        self.c.connect("127.0.0.1", b.mqtts, keepalive=30)
        self.c.loop_start()
        rc = self.connack.get(timeout=10)
        if rc is None:
            self.c.loop_stop()
            raise ConnectionError("closed without a CONNACK")
        # paho reports 3.x return codes as MQTT 5 reason codes: back to 3.x
        self.rc = {0: 0, 0x86: 4, 0x87: 5}.get(rc.value, rc.value)

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


class _StompListener(stomp.ConnectionListener):
    def __init__(self):
        self.messages, self.errors = queue.Queue(), queue.Queue()

    def on_message(self, frame):
        self.messages.put(frame)

    def on_error(self, frame):
        self.errors.put(frame)


class StompTls:
    """stomp.py over TLS (set_ssl with the test CA), connected. With login=None the
    CONNECT carries no login header."""

    def __init__(self, b, pki, client=None, login="guest", passcode="guest"):
        self.conn = stomp.Connection12([("127.0.0.1", b.stomps)], heartbeats=(0, 0), vhost="/")
        cert = dict(cert_file=str(pki / f"{client}.pem"), key_file=str(pki / f"{client}.key")) if client else {}
        self.conn.set_ssl(for_hosts=[("127.0.0.1", b.stomps)], ca_certs=str(pki / "ca.pem"), **cert)
        self.l = _StompListener()
        self.conn.set_listener("t", self.l)
        if login is None:
            self.conn.connect(wait=True)
        else:
            self.conn.connect(login, passcode, wait=True)

    def close(self):
        self.conn.disconnect()


def overview_listeners(b, pki):
    return {(x["protocol"], x["port"]) for x in https(b, pki, "/api/overview").json()["listeners"]}


def test_https_management_api_with_the_broker_certificate(pki, tmp_path):
    b = TlsWarren(tmp_path, *server_args(pki))
    try:
        r = https(b, pki, "/api/overview")
        assert r.status_code == 200
        assert {("amqp/ssl", b.amqps), ("https", b.https), ("mqtt/ssl", b.mqtts), ("stomp/ssl", b.stomps),
                ("amqp", b.amqp), ("http", b.http), ("mqtt", b.mqtt), ("stomp", b.stomp)} <= \
            {(x["protocol"], x["port"]) for x in r.json()["listeners"]}
        assert server_cn(b.https, pki) == "localhost"
        # the same API on both schemes, with the same authentication
        plain = requests.get(f"http://127.0.0.1:{b.http}/api/whoami", auth=("guest", "guest"), timeout=10)
        assert plain.json() == https(b, pki, "/api/whoami").json()
        bad = requests.get(f"https://localhost:{b.https}/api/whoami", auth=("guest", "nope"),
                           verify=str(pki / "ca.pem"), timeout=10)
        assert bad.status_code == 401
        # the web UI is served over HTTPS too
        ui = requests.get(f"https://localhost:{b.https}/", verify=str(pki / "ca.pem"), timeout=10)
        assert ui.status_code == 200 and "<html" in ui.text.lower()
        # the listener health check sees the TLS ports
        assert https(b, pki, f"/api/health/checks/port-listener/{b.https}").json()["status"] == "ok"
        # an untrusting client refuses the certificate; plain HTTP to the HTTPS port gets no answer
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"https://localhost:{b.https}/api/overview", timeout=10)
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(f"http://127.0.0.1:{b.https}/api/overview", timeout=10)
        assert https(b, pki, "/api/overview").status_code == 200
    finally:
        b.stop()


def test_https_own_certificate_and_required_client_certificate(pki, tmp_path):
    b = TlsWarren(tmp_path, *server_args(pki, "--https-cert", str(pki / "mgmt.pem"), "--https-key",
                                         str(pki / "mgmt.key"), "--https-ca", str(pki / "ca.pem"),
                                         "--https-verify-peer", "true", "--https-fail-if-no-peer-cert", "true"))
    try:
        assert server_cn(b.https, pki) == "management.localhost"
        assert server_cn(b.amqps, pki) == "localhost"
        with pytest.raises(requests.exceptions.RequestException):
            https(b, pki, "/api/overview")
        assert https(b, pki, "/api/overview", client="guest").status_code == 200
        # the certificate proves nothing about the HTTP user: Basic auth still decides
        r = requests.get(f"https://localhost:{b.https}/api/overview", verify=str(pki / "ca.pem"),
                         cert=(str(pki / "guest.pem"), str(pki / "guest.key")), timeout=10)
        assert r.status_code == 401
        # client verification on HTTPS does not reach the broker's other listeners
        roundtrip(pika.BlockingConnection(params(b, pki)))
    finally:
        b.stop()
    assert "TLS handshake failed" in b.log.read_text()


def test_mqtts_publish_subscribe_and_plain_mqtt_alongside(pki, tmp_path):
    b = TlsWarren(tmp_path, *server_args(pki))
    try:
        sub = MqttTls(b, pki)
        assert sub.rc == 0
        assert isinstance(sub.c.socket(), ssl.SSLSocket)
        sub.c.subscribe("tls/+", qos=1)
        time.sleep(0.3)
        # the management API lists it as an MQTT connection over TLS, in RabbitMQ's terms
        [listed] = [c for c in https(b, pki, "/api/connections").json() if c["protocol"] == "MQTT 3.1.1"]
        version = sub.c.socket().version()  # "TLSv1.3"
        assert listed["ssl"] is True
        assert listed["ssl_protocol"] == version.lower()
        assert listed["ssl_hash"] == "aead"
        cipher = sub.c.socket().cipher()[0]  # "TLS_AES_256_GCM_SHA384"
        assert listed["ssl_cipher"].upper() in cipher
        # Python negotiates TLS 1.3, whose suites leave the key exchange open
        assert (version, listed["ssl_key_exchange"]) == ("TLSv1.3", "any")
        pub = MqttTls(b, pki)
        pub.c.publish("tls/a", b"over mqtts", qos=1).wait_for_publish(10)
        assert sub.messages.get(timeout=10).payload == b"over mqtts"
        # a plain MQTT client and an AMQP client reach the same subscriber
        plain = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="plain", protocol=mqtt.MQTTv311)
        plain.username_pw_set("guest", "guest")
        plain.connect("127.0.0.1", b.mqtt)
        plain.loop_start()
        plain.publish("tls/b", b"from plain", qos=1).wait_for_publish(10)
        conns = https(b, pki, "/api/connections").json()
        assert sorted((c["ssl"], c["ssl_protocol"]) for c in conns) == \
            [(False, None), (True, version.lower()), (True, version.lower())]
        assert sub.messages.get(timeout=10).payload == b"from plain"
        plain.disconnect()
        plain.loop_stop()
        conn = pika.BlockingConnection(params(b, pki))
        ssl_flags = {c["protocol"]: (c["ssl"], c["ssl_protocol"]) for c in https(b, pki, "/api/connections").json()}
        assert ssl_flags["AMQP 0-9-1"] == (True, version.lower())
        conn.channel().basic_publish("amq.topic", "tls.c", b"from amqps")
        assert sub.messages.get(timeout=10).payload == b"from amqps"
        conn.close()
        # bad credentials over TLS are refused as over TCP
        assert MqttTls(b, pki, password="wrong").rc == 4
        pub.close()
        sub.close()
    finally:
        b.stop()


def test_mqtts_client_certificate_required(pki, tmp_path):
    b = TlsWarren(tmp_path, *server_args(pki, "--tls-ca", str(pki / "ca.pem"), "--tls-verify-peer", "true",
                                         "--tls-fail-if-no-peer-cert", "true"))
    try:
        with pytest.raises(OSError):
            MqttTls(b, pki)
        c = MqttTls(b, pki, client="nobody")
        # a certificate without ssl_cert_login is only a certificate: the password logs in
        assert c.rc == 0
        c.close()
    finally:
        b.stop()


def test_mqtt_ssl_cert_login(pki, tmp_path):
    b = TlsWarren(tmp_path, *server_args(pki, "--tls-ca", str(pki / "ca.pem"), "--tls-verify-peer", "true",
                                         "--mqtt-ssl-cert-login", "true"))
    try:
        # no username or password: the certificate's common name is the user
        c = MqttTls(b, pki, client="guest", username=None)
        assert c.rc == 0
        conns = https(b, pki, "/api/connections").json()
        mine = [x for x in conns if x["protocol"].startswith("MQTT")]
        assert [(x["user"], x["auth_mechanism"]) for x in mine] == [("guest", "EXTERNAL")]
        c.close()
        # as an AMQP client logging in with SASL EXTERNAL shows
        conn = pika.BlockingConnection(params(b, pki, "guest", pika.credentials.ExternalCredentials()))
        conns = https(b, pki, "/api/connections").json()
        assert [x["auth_mechanism"] for x in conns if x["protocol"] == "AMQP 0-9-1"] == ["EXTERNAL"]
        conn.close()
        # a certificate naming no user is refused as bad credentials (as RabbitMQ)
        assert MqttTls(b, pki, client="nobody", username=None).rc == 4
        # a username and password take priority over the certificate
        assert MqttTls(b, pki, client="nobody", password="wrong").rc == 4
        c = MqttTls(b, pki, client="nobody")
        assert c.rc == 0
        c.close()
        # without a certificate, no credentials means the anonymous default user (guest)
        c = MqttTls(b, pki, username=None)
        assert c.rc == 0
        c.close()
    finally:
        b.stop()


def test_without_ssl_cert_login_the_certificate_does_not_log_in(pki, tmp_path):
    b = TlsWarren(tmp_path, *server_args(pki, "--tls-ca", str(pki / "ca.pem"), "--tls-verify-peer", "true"))
    try:
        # anonymous: the default user, whatever the certificate says
        c = MqttTls(b, pki, client="nobody", username=None)
        assert c.rc == 0
        c.close()
        s = StompTls(b, pki, client="nobody", login=None)
        s.close()
        users = {(x["user"], x["auth_mechanism"]) for x in https(b, pki, "/api/connections").json()}
        assert ("nobody", "EXTERNAL") not in users
    finally:
        b.stop()


def test_stomp_over_tls(pki, tmp_path):
    b = TlsWarren(tmp_path, *server_args(pki))
    try:
        s = StompTls(b, pki)
        assert isinstance(s.conn.transport.socket, ssl.SSLSocket)
        [listed] = https(b, pki, "/api/connections").json()
        assert (listed["protocol"], listed["ssl"]) == ("STOMP 1.2", True)
        q = f"tls-{uuid.uuid4().hex[:8]}"
        s.conn.subscribe(f"/queue/{q}", id="1", ack="auto")
        time.sleep(0.3)
        s.conn.send(f"/queue/{q}", "over tls")
        assert s.l.messages.get(timeout=10).body == "over tls"
        # an AMQP client over TLS and a plain STOMP client share the queue
        conn = pika.BlockingConnection(params(b, pki))
        conn.channel().basic_publish("", q, b"from amqps")
        assert s.l.messages.get(timeout=10).body == "from amqps"
        conn.close()
        plain = stomp.Connection12([("127.0.0.1", b.stomp)], vhost="/")
        plain.connect("guest", "guest", wait=True)
        plain.send(f"/queue/{q}", "from plain")
        assert s.l.messages.get(timeout=10).body == "from plain"
        plain.disconnect()
        s.close()
        # a wrong passcode gets RabbitMQ's ERROR frame over TLS too
        with pytest.raises(stomp.exception.ConnectFailedException):
            StompTls(b, pki, passcode="wrong")
    finally:
        b.stop()


def test_stomp_ssl_cert_login_and_required_certificate(pki, tmp_path):
    b = TlsWarren(tmp_path, *server_args(pki, "--tls-ca", str(pki / "ca.pem"), "--tls-verify-peer", "true",
                                         "--tls-fail-if-no-peer-cert", "true", "--stomp-ssl-cert-login", "true"))
    try:
        with pytest.raises((OSError, stomp.exception.ConnectFailedException)):
            StompTls(b, pki)
        s = StompTls(b, pki, client="guest", login=None)
        conns = https(b, pki, "/api/connections").json()
        assert [(x["user"], x["auth_mechanism"]) for x in conns if x["protocol"].startswith("STOMP")] == \
            [("guest", "EXTERNAL")]
        s.close()
        with pytest.raises(stomp.exception.ConnectFailedException):
            StompTls(b, pki, client="nobody", login=None)
        # a login header wins over the certificate
        s = StompTls(b, pki, client="nobody")
        s.close()
    finally:
        b.stop()
    assert "Access refused for user 'nobody'" in b.log.read_text()


@pytest.mark.parametrize("listener", ["https", "mqtts", "stomps"])
def test_openssl_s_client_on_every_tls_port(pki, tmp_path, listener):
    b = TlsWarren(tmp_path, *server_args(pki))
    try:
        port = getattr(b, listener)
        r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile",
                            str(pki / "ca.pem"), "-verify_return_error", "-servername", "localhost"],
                           input=b"", capture_output=True, timeout=20)
        out = r.stdout.decode(errors="replace")
        assert "Verify return code: 0 (ok)" in out, out[-2000:]
        assert "CN = localhost" in out
    finally:
        b.stop()


def test_tls_ports_listen_only_with_a_certificate_and_zero_disables(pki, tmp_path):
    # without a certificate: none of the TLS listeners, and the overview says so
    http = free_port()
    log = tmp_path / "plain.log"
    p = subprocess.Popen([WARREN_BIN, "--bind", "127.0.0.1", "--amqp-port", str(free_port()), "--http-port",
                          str(http), "--mqtt-port", "0", "--stomp-port", "0", "--prometheus-port", "0",
                          "--web-mqtt-port", "0", "--web-stomp-port", "0", "--data-dir", str(tmp_path / "d")],
                         stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    try:
        wait_port("127.0.0.1", http, proc=p)
        protocols = {x["protocol"] for x in requests.get(
            f"http://127.0.0.1:{http}/api/overview", auth=("guest", "guest"), timeout=10).json()["listeners"]}
        assert protocols == {"amqp", "http"}
    finally:
        p.terminate()
        p.wait(10)
    assert "TLS" not in log.read_text()
    # with one, 0 turns each off
    b = TlsWarren(tmp_path, *server_args(pki, "--mqtts-port", "0", "--stomps-port", "0"), expect=("amqps", "https"))
    try:
        protocols = {x["protocol"] for x in https(b, pki, "/api/overview").json()["listeners"]}
        assert {"amqp/ssl", "https"} <= protocols and not {"mqtt/ssl", "stomp/ssl"} & protocols
        text = b.log.read_text()
        assert "MQTT over TLS listening" not in text
        assert f"management HTTPS listening on 127.0.0.1:{b.https}" in text
    finally:
        b.stop()


def test_a_stalled_handshake_holds_up_nobody_and_is_closed(pki, tmp_path):
    b = TlsWarren(tmp_path, *server_args(pki))
    try:
        # TCP connections to every TLS port that never start the handshake
        stalled = {k: socket.create_connection(("127.0.0.1", getattr(b, k)), timeout=20)
                   for k in ("https", "mqtts", "stomps", "amqps")}
        # meanwhile real clients get through on each
        assert https(b, pki, "/api/overview").status_code == 200
        c = MqttTls(b, pki)
        assert c.rc == 0
        c.close()
        StompTls(b, pki).close()
        conn = pika.BlockingConnection(params(b, pki))
        roundtrip(conn)
        # the AMQP connection that logged in with PLAIN over TLS shows so
        conns = https(b, pki, "/api/connections").json()
        assert ("guest", "PLAIN") in {(x["user"], x["auth_mechanism"]) for x in conns}
        conn.close()
        # each stalled socket is closed by the server after the 10 s login timeout
        start = time.time()
        for name, s in stalled.items():
            try:
                assert s.recv(1) == b"", name
            except ConnectionResetError:
                pass
            s.close()
        assert time.time() - start < 15
    finally:
        b.stop()
    assert "TLS handshake timed out" in b.log.read_text()
