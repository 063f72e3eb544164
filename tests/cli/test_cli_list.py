"""warrenctl's listings and status, on objects made by real clients."""

import json


def rows(result):
    """The data rows of a table printed with -q (header row first)."""
    return [line.split("\t") for line in result.lines]


def test_list_queues_default_columns_and_info_lines(warren, uniq):
    vhost = uniq("v")
    assert warren.ctl("add_vhost", vhost).code == 0
    assert warren.ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*").code == 0
    with warren.connect(vhost) as c:
        ch = c.channel()
        ch.queue_declare("a")
        ch.queue_declare("b")
        for _ in range(3):
            ch.basic_publish("", "a", b"x")
        ch.confirm_delivery()
        ch.basic_publish("", "b", b"y")
    r = warren.ctl("list_queues", "-p", vhost)
    assert r.code == 0, r
    assert r.lines[:3] == [
        "Timeout: 60.0 seconds ...",
        f"Listing queues for vhost {vhost} ...",
        "name\tmessages",
    ]
    assert sorted(r.lines[3:]) == ["a\t3", "b\t1"]
    assert r.err == ""


def test_list_queues_columns_quiet_silent_and_json(warren, uniq):
    q = uniq("q")
    with warren.connect() as c:
        ch = c.channel()
        ch.queue_declare(q, arguments={"x-max-length": 10, "x-dead-letter-exchange": "dlx"})
        ch.basic_consume(q, lambda *a: None)
        r = warren.ctl("-q", "list_queues", "name", "consumers", "durable", "arguments")
        assert r.code == 0, r
        assert r.lines[0] == "name\tconsumers\tdurable\targuments"
        assert [q, "1", "false", '[{"x-dead-letter-exchange","dlx"},{"x-max-length",10}]'] in rows(r)
        # rabbitmqctl also takes comma-separated columns.
        assert warren.ctl("-q", "list_queues", "name,consumers").lines[0] == "name\tconsumers"
        s = warren.ctl("list_queues", "-s", "name", "consumers")
        assert f"{q}\t1" in s.lines
        assert not any(line.startswith(("Listing", "Timeout", "name\t")) for line in s.lines)
        nh = warren.ctl("list_queues", "--no-table-headers")
        assert nh.lines[1].startswith("Listing queues") and "name\tmessages" not in nh.lines
        j = warren.ctl("list_queues", "name", "arguments", "--formatter", "json")
        assert j.code == 0, j
        assert j.lines[0] == "[" and j.lines[-1] == "]"
        assert all(line.startswith(",{") for line in j.lines[2:-1])
        items = json.loads(j.out)
        mine = [i for i in items if i["name"] == q]
        assert mine == [{
            "name": q,
            "arguments": [["x-dead-letter-exchange", "longstr", "dlx"], ["x-max-length", "long", 10]],
        }]
        assert list(mine[0]) == ["name", "arguments"]


def test_list_exchanges_and_bindings(warren, uniq):
    vhost = uniq("v")
    assert warren.ctl("add_vhost", vhost).code == 0
    assert warren.ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*").code == 0
    with warren.connect(vhost) as c:
        ch = c.channel()
        ch.exchange_declare("ex", "topic", durable=True)
        ch.queue_declare("q")
        ch.queue_bind("q", "ex", "a.#", arguments={"x-k": "v"})
    r = warren.ctl("list_exchanges", "-p", vhost)
    assert r.code == 0, r
    assert r.lines[:2] == [f"Listing exchanges for vhost {vhost} ...", "name\ttype"]
    assert sorted(r.lines[2:]) == sorted([
        "\tdirect", "amq.direct\tdirect", "amq.fanout\tfanout", "amq.headers\theaders",
        "amq.match\theaders", "amq.topic\ttopic", "ex\ttopic",
    ])
    r = warren.ctl("-q", "list_exchanges", "-p", vhost, "name", "durable", "auto_delete", "internal")
    assert ["ex", "true", "false", "false"] in rows(r)
    b = warren.ctl("list_bindings", "-p", vhost)
    assert b.code == 0, b
    assert b.lines[:2] == [
        f"Listing bindings for vhost {vhost}...",
        "source_name\tsource_kind\tdestination_name\tdestination_kind\trouting_key\targuments",
    ]
    assert sorted(b.lines[2:]) == [
        "\texchange\tq\tqueue\tq\t[]",
        'ex\texchange\tq\tqueue\ta.#\t[{"x-k","v"}]',
    ]
    b = warren.ctl("-q", "list_bindings", "-p", vhost, "source_name", "routing_key")
    assert sorted(b.lines[1:]) == ["\tq", "ex\ta.#"]


def test_listings_of_a_missing_vhost_are_empty_as_in_rabbitmqctl(warren):
    r = warren.ctl("list_queues", "-p", "no-such-vhost")
    assert r.code == 0, r
    assert r.lines == ["Timeout: 60.0 seconds ...", "Listing queues for vhost no-such-vhost ..."]
    assert warren.ctl("-q", "list_exchanges", "-p", "no-such-vhost").out == ""
    assert warren.ctl("list_policies", "-p", "nope", "--formatter", "json").lines == ["[", "]"]


def test_connections_channels_and_consumers(warren, uniq):
    q = uniq("q")
    with warren.connect(client_properties={"connection_name": "ctl-test"}) as c:
        ch = c.channel()
        ch.queue_declare(q)
        ch.basic_qos(prefetch_count=7)
        tag = ch.basic_consume(q, lambda *a: None, consumer_tag=uniq("tag"))
        local_port = c._impl._transport._sock.getsockname()[1]
        r = warren.ctl("list_connections")
        assert r.code == 0, r
        assert r.lines[:2] == ["Listing connections ...", "user\tpeer_host\tpeer_port\tstate"]
        assert f"guest\t127.0.0.1\t{local_port}\trunning" in r.lines
        r = warren.ctl("-q", "list_connections", "name", "vhost", "channels", "client_properties")
        mine = [row for row in rows(r) if row[0].startswith(f"127.0.0.1:{local_port} ")]
        assert len(mine) == 1
        name = mine[0][0]
        assert mine[0][1:3] == ["/", "1"]
        assert '{"connection_name","ctl-test"}' in mine[0][3]
        assert '{"product","Pika Python Client Library"}' in mine[0][3]

        r = warren.ctl("list_channels")
        assert r.lines[:2] == [
            "Listing channels ...", "pid\tuser\tconsumer_count\tmessages_unacknowledged",
        ]
        r = warren.ctl("-q", "list_channels", "connection", "number", "prefetch_count", "consumer_count")
        assert [name, "1", "7", "1"] in rows(r)

        r = warren.ctl("list_consumers")
        assert r.lines[:2] == [
            "Listing consumers in vhost / ...",
            "queue_name\tchannel_pid\tconsumer_tag\tack_required\tprefetch_count\tactive\targuments",
        ]
        assert f"{q}\t{name} (1)\t{tag}\ttrue\t7\ttrue\t[]" in r.lines
        j = json.loads(warren.ctl("list_consumers", "--formatter", "json").out)
        assert {"queue_name": q, "channel_pid": f"{name} (1)", "consumer_tag": tag,
                "ack_required": True, "prefetch_count": 7, "active": True,
                "arguments": []} in j


def test_users_vhosts_permissions_policies(warren, uniq):
    user, vhost = uniq("u"), uniq("v")
    assert warren.ctl("add_user", user, "pw").code == 0
    assert warren.ctl("set_user_tags", user, "monitoring", "policymaker").code == 0
    r = warren.ctl("list_users")
    assert r.lines[:2] == ["Listing users ...", "user\ttags"]
    assert f"{user}\t[monitoring, policymaker]" in r.lines
    assert "guest\t[administrator]" in r.lines
    assert {"user": user, "tags": ["monitoring", "policymaker"]} in json.loads(
        warren.ctl("list_users", "--formatter", "json").out)

    assert warren.ctl("add_vhost", vhost, "--description", "for tests", "--tags", "a,b").code == 0
    r = warren.ctl("list_vhosts")
    assert r.lines[:2] == ["Listing vhosts ...", "name"]
    assert vhost in r.lines and "/" in r.lines
    r = warren.ctl("-q", "list_vhosts", "name", "description", "tags", "tracing", "cluster_state")
    assert [vhost, "for tests", "[a, b]", "false", "[{warren@localhost, running}]"] in rows(r)

    assert warren.ctl("set_permissions", "-p", vhost, user, "^c", "^w", "^r").code == 0
    r = warren.ctl("list_permissions", "-p", vhost)
    # As in RabbitMQ, the user who created the vhost was granted everything in it.
    assert r.lines[:2] == [
        f'Listing permissions for vhost "{vhost}" ...',
        "user\tconfigure\twrite\tread",
    ]
    assert sorted(r.lines[2:]) == ["guest\t.*\t.*\t.*", f"{user}\t^c\t^w\t^r"]

    r = warren.ctl("set_policy", "-p", vhost, "--priority", "3", "--apply-to", "queues",
                   "lim", "^lim", '{"max-length": 5}')
    assert r.code == 0, r
    assert r.lines == [
        f'Setting policy "lim" for pattern "^lim" to "{{"max-length": 5}}" '
        f'with priority "3" for vhost "{vhost}" ...'
    ]
    r = warren.ctl("list_policies", "-p", vhost)
    assert r.lines == [
        f'Listing policies for vhost "{vhost}" ...',
        "vhost\tname\tpattern\tapply-to\tdefinition\tpriority",
        f'{vhost}\tlim\t^lim\tqueues\t{{"max-length":5}}\t3',
    ]
    assert json.loads(warren.ctl("-p", vhost, "list_policies", "--formatter", "json").out) == [
        {"vhost": vhost, "name": "lim", "pattern": "^lim", "apply-to": "queues",
         "definition": '{"max-length":5}', "priority": 3}
    ]


def test_unknown_columns_are_a_usage_error(warren):
    r = warren.ctl("list_queues", "name", "nosuchcol", "other")
    assert r.code == 64, r
    assert r.out == ""
    assert "Info key(s) nosuchcol,other are not supported" in r.err
    assert warren.ctl("list_exchanges", "messages").code == 64


def test_status(warren_private):
    s = warren_private
    with s.connect() as c:
        c.channel().queue_declare("one")
        r = s.ctl("status")
        assert r.code == 0, r
        assert r.lines[0] == "Status of node warren@localhost ..."
        text = r.out
        for section in ("Runtime", "Plugins", "Data directory", "Alarms", "Memory",
                        "File Descriptors", "Free Disk Space", "Totals", "Listeners"):
            assert f"\n{section}\n" in text
        assert f"OS PID: {s.proc.pid}\n" in text
        assert "Connection count: 1\nQueue count: 1\nVirtual host count: 1\n" in text
        assert (f"Interface: 127.0.0.1, port: {s.amqp_port}, protocol: amqp, "
                "purpose: AMQP 0-9-1 and AMQP 1.0") in text
        assert f"Node data directory: {s.tmp}/data\n" in text
        j = s.ctl("status", "--formatter", "json")
        st = json.loads(j.out)
        assert st["pid"] == s.proc.pid
        assert st["totals"] == {"virtual_host_count": 1, "connection_count": 1, "queue_count": 1}
        assert st["alarms"] == []
        assert {"interface": "127.0.0.1", "node": "warren@localhost", "port": s.amqp_port,
                "protocol": "amqp", "purpose": "AMQP 0-9-1 and AMQP 1.0"} in st["listeners"]
        assert st["file_descriptors"]["total_used"] > 0
    assert "Status of node" not in s.ctl("-q", "status").out


def test_quiet_drops_the_informational_line_of_commands(warren, uniq):
    v = uniq("v")
    assert warren.ctl("-q", "add_vhost", v).out == ""
    assert warren.ctl("add_vhost", v).out == f'Adding vhost "{v}" ...\n'
    j = warren.ctl("delete_vhost", v, "--formatter", "json")
    assert j.code == 0 and json.loads(j.out) == {"result": "ok"}, j
    assert v not in warren.ctl("-s", "list_vhosts").lines
