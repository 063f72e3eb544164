"""warrenctl's changes, checked by their effects on real clients."""

import json
import time

import pika
import pytest

from conftest import run_ctl, start_warren, stop


def can_connect(server, user, password, vhost="/"):
    try:
        with server.connect(vhost, user, password):
            return True
    except (pika.exceptions.ProbableAuthenticationError,
            pika.exceptions.ProbableAccessDeniedError,
            pika.exceptions.ConnectionClosedByBroker):
        return False


def test_user_lifecycle_seen_by_amqp_clients(warren, uniq):
    user, vhost = uniq("u"), uniq("v")
    r = warren.ctl("add_user", user, "s3cret")
    assert r.code == 0, r
    assert r.lines == [
        f'Adding user "{user}" ...',
        "Done. Don't forget to grant the user permissions to some virtual hosts! "
        "See 'warrenctl help set_permissions' to learn more.",
    ]
    assert warren.ctl("add_vhost", vhost).code == 0
    # No permissions yet: the vhost is refused.
    assert not can_connect(warren, user, "s3cret", vhost)
    r = warren.ctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
    assert r.code == 0, r
    assert r.lines == [f'Setting permissions for user "{user}" in vhost "{vhost}" ...']
    assert can_connect(warren, user, "s3cret", vhost)

    r = warren.ctl("change_password", user, "n3w")
    assert r.code == 0 and r.lines == [f'Changing password for user "{user}" ...'], r
    assert not can_connect(warren, user, "s3cret", vhost)
    assert can_connect(warren, user, "n3w", vhost)

    # Tags open the management API to the user; setting them keeps the password.
    assert warren.api("GET", "/api/overview", user, "n3w").status_code == 401
    r = warren.ctl("set_user_tags", user, "monitoring")
    assert r.code == 0 and r.lines == [f'Setting tags for user "{user}" to [monitoring] ...'], r
    assert warren.api("GET", "/api/overview", user, "n3w").status_code == 200
    assert can_connect(warren, user, "n3w", vhost)
    # ...and the user can now use warrenctl for what monitoring allows.
    r = warren.ctl("-q", "list_connections", user=user, password="n3w")
    assert r.code == 0, r
    r = warren.ctl("set_user_tags", user)
    assert r.code == 0, r
    assert warren.api("GET", "/api/overview", user, "n3w").status_code == 401

    r = warren.ctl("clear_permissions", "-p", vhost, user)
    assert r.code == 0 and r.lines == [
        f'Clearing permissions for user "{user}" in vhost "{vhost}" ...'], r
    assert not can_connect(warren, user, "n3w", vhost)
    # Clearing what is not there succeeds, as in rabbitmqctl.
    assert warren.ctl("clear_permissions", "-p", vhost, user).code == 0

    r = warren.ctl("delete_user", user)
    assert r.code == 0 and r.lines == [f'Deleting user "{user}" ...'], r
    assert not can_connect(warren, user, "n3w")
    r = warren.ctl("delete_vhost", vhost)
    assert r.code == 0 and r.lines == [f'Deleting vhost "{vhost}" ...'], r
    assert not can_connect(warren, "guest", "guest", vhost)


def test_permissions_are_enforced_as_set(warren, uniq):
    user, vhost = uniq("u"), uniq("v")
    assert warren.ctl("add_vhost", vhost).code == 0
    assert warren.ctl("add_user", user, "pw").code == 0
    # May write to and read from anything, but configure only queues named "mine.*".
    assert warren.ctl("set_permissions", "-p", vhost, user, "^mine\\.", ".*", ".*").code == 0
    with warren.connect(vhost, user, "pw") as c:
        ch = c.channel()
        ch.queue_declare("mine.q")
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
            ch.queue_declare("theirs.q")
        assert e.value.reply_code == 403


def test_policy_applies_to_queues_until_cleared(warren, uniq):
    q = uniq("q")
    r = warren.ctl("set_policy", "--apply-to", "queues", "--priority", "5",
                   uniq("p"), f"^{q}$", '{"max-length": 2}')
    assert r.code == 0, r
    name = r.lines[0].split('"')[1]
    with warren.connect() as c:
        ch = c.channel()
        ch.queue_declare(q)
        ch.confirm_delivery()
        for i in range(5):
            ch.basic_publish("", q, str(i).encode())
    r = warren.ctl("-q", "list_queues", "name", "messages", "policy")
    assert f"{q}\t2\t{name}" in r.lines
    r = warren.ctl("clear_policy", name)
    assert r.code == 0 and r.lines == [f'Clearing policy "{name}" on vhost "/" ...'], r
    with warren.connect() as c:
        ch = c.channel()
        ch.confirm_delivery()
        for i in range(3):
            ch.basic_publish("", q, b"more")
    assert f"{q}\t5\t" in warren.ctl("-q", "list_queues", "name", "messages", "policy").lines


def test_purge_and_delete_queue(warren, uniq):
    q = uniq("q")
    with warren.connect() as c:
        ch = c.channel()
        ch.queue_declare(q)
        ch.confirm_delivery()
        for _ in range(4):
            ch.basic_publish("", q, b"m")
    r = warren.ctl("purge_queue", q)
    assert r.code == 0 and r.lines == [f"Purging queue '{q}' in vhost '/' ..."], r
    with warren.connect() as c:
        assert c.channel().queue_declare(q, passive=True).method.message_count == 0
        ch = c.channel()
        ch.confirm_delivery()
        ch.basic_publish("", q, b"m")
        ch.basic_publish("", q, b"m")
    # --if-empty refuses a queue with messages; the queue stays.
    r = warren.ctl("delete_queue", "--if-empty", q)
    assert r.code == 64 and "not empty" in r.err, r
    r = warren.ctl("delete_queue", q, "-u")
    assert r.code == 0, r
    assert r.lines == [
        f"Deleting queue '{q}' on vhost '/' if queue is unused ...",
        "Queue was successfully deleted with 2 ready messages",
    ]
    with warren.connect() as c:
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
            c.channel().queue_declare(q, passive=True)
        assert e.value.reply_code == 404


def test_close_connection_closes_a_pika_connection(warren):
    c = warren.connect()
    try:
        local_port = c._impl._transport._sock.getsockname()[1]
        rows = warren.ctl("-q", "list_connections", "name", "peer_port").lines[1:]
        name = [r.split("\t")[0] for r in rows if r.endswith(f"\t{local_port}")][0]
        r = warren.ctl("close_connection", name, "maintenance window")
        assert r.code == 0, r
        assert r.lines == [f"Closing connection {name}, reason: maintenance window..."]
        with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as e:
            deadline = time.time() + 10
            while time.time() < deadline:
                c.process_data_events(time_limit=0.2)
        assert e.value.reply_code == 320
        assert "maintenance window" in e.value.reply_text
    finally:
        if c.is_open:
            c.close()
    after = warren.ctl("-q", "list_connections", "name").lines
    assert name not in after


def test_export_and_import_definitions_round_trip(warren_private, tmp_path, uniq):
    src = warren_private
    user, vhost = "ops", "prod"
    assert src.ctl("add_user", user, "pw").code == 0
    assert src.ctl("set_user_tags", user, "policymaker").code == 0
    assert src.ctl("add_vhost", vhost).code == 0
    assert src.ctl("set_permissions", "-p", vhost, user, "^c", "^w", "^r").code == 0
    assert src.ctl("set_policy", "-p", vhost, "ttl", "^t", '{"message-ttl": 1000}').code == 0
    with src.connect(vhost) as c:
        ch = c.channel()
        ch.exchange_declare("events", "topic", durable=True)
        ch.queue_declare("audit", durable=True, arguments={"x-max-length": 100})
        ch.queue_bind("audit", "events", "#")
    path = tmp_path / "defs.json"
    r = src.ctl("export_definitions", str(path))
    assert r.code == 0 and r.lines == [
        f'Exporting definitions in JSON to a file at "{path}" ...'], r
    defs = json.loads(path.read_text())
    assert {q["name"] for q in defs["queues"]} == {"audit"}
    # "-" writes to standard output.
    assert json.loads(src.ctl("export_definitions", "-").out) == defs

    dst = start_warren()
    try:
        r = dst.ctl("import_definitions", str(path))
        assert r.code == 0, r
        assert r.lines[0] == f'Importing definitions in JSON from a file at "{path}" ...'
        assert can_connect(dst, user, "pw", vhost)
        assert f"{user}\t[policymaker]" in dst.ctl("-s", "list_users").lines
        assert f"{user}\t^c\t^w\t^r" in dst.ctl("-s", "list_permissions", "-p", vhost).lines
        assert dst.ctl("-s", "list_policies", "-p", vhost).lines == [
            f'{vhost}\tttl\t^t\tall\t{{"message-ttl":1000}}\t0']
        assert "audit\t0" in dst.ctl("-s", "list_queues", "-p", vhost).lines
        assert "events\t#" in dst.ctl("-s", "list_bindings", "-p", vhost, "source_name", "routing_key").lines
        with dst.connect(vhost) as c:
            ch = c.channel()
            ch.confirm_delivery()
            ch.basic_publish("events", "any.key", b"routed")
            assert ch.queue_declare("audit", passive=True).method.message_count == 1
        # Standard input works too, and importing again changes nothing.
        r = dst.ctl("import_definitions", "-", stdin=path.read_text())
        assert r.code == 0, r
        assert r.lines[0] == "Importing definitions in JSON from standard input ..."
        assert "audit\t1" in dst.ctl("-s", "list_queues", "-p", vhost).lines
    finally:
        stop(dst)


def test_config_file_and_environment(warren, tmp_path):
    cfg = tmp_path / "warrenctl.toml"
    cfg.write_text(f'# where the broker is\nurl = "{warren.http_url}"\nuser = "guest"\n'
                   "password = 'guest'\n")
    # No --url/--user/--password at all: the config file says it.
    r = warren_run(["--config", str(cfg), "-q", "list_vhosts"])
    assert r.code == 0 and "/" in r.lines, r
    # The default config file, found through XDG_CONFIG_HOME.
    r = warren_run(["-s", "list_vhosts"], env={"XDG_CONFIG_HOME": str(tmp_path)})
    assert r.code == 0 and "/" in r.lines, r
    # Environment variables override the file; flags override both.
    r = warren_run(["-s", "list_vhosts"],
                   env={"XDG_CONFIG_HOME": str(tmp_path), "WARRENCTL_PASSWORD": "wrong"})
    assert r.code == 77, r
    r = warren_run(["--password", "guest", "-s", "list_vhosts"],
                   env={"XDG_CONFIG_HOME": str(tmp_path), "WARRENCTL_PASSWORD": "wrong"})
    assert r.code == 0, r
    r = warren_run(["-s", "list_vhosts"], env={"WARRENCTL_URL": warren.http_url,
                                                "WARRENCTL_USER": "guest",
                                                "WARRENCTL_PASSWORD": "guest"})
    assert r.code == 0 and "/" in r.lines, r
    bad = tmp_path / "bad.toml"
    bad.write_text('url = "x"\nvhost = "/"\n')
    r = warren_run(["--config", str(bad), "list_vhosts"])
    assert r.code == 78, r
    assert "line 2: unknown key `vhost`" in r.err


def warren_run(args, env=None):
    """warrenctl with no --url, --user or --password."""
    return run_ctl(args, None, None, None, env=env)

