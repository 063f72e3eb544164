"""warrenctl against RabbitMQ's own rabbitmqctl, on a reference RabbitMQ: the same broker
state, listed or changed by both tools, must print the same and exit the same.

warrenctl talks to the reference's management API; rabbitmqctl to its Erlang node.
Skipped unless REFERENCE_HTTP_URL is set (see conftest.py).
"""

import json
import time

import pytest
import requests


@pytest.fixture
def ref_vhost(reference, uniq):
    """A vhost of the reference with an exchange, a queue, a binding and a policy."""
    v = uniq("ctl")
    base = reference.http_url + "/api"
    auth = (reference.user, reference.password)
    vq = requests.utils.quote(v, safe="")

    def put(path, body):
        r = requests.put(base + path, json=body, auth=auth, timeout=60)
        assert r.status_code in (201, 204), r.text

    put(f"/vhosts/{vq}", {})
    put(f"/permissions/{vq}/{reference.user}", {"configure": ".*", "write": ".*", "read": ".*"})
    put(f"/exchanges/{vq}/ex", {"type": "topic", "durable": True})
    put(f"/queues/{vq}/q1", {"durable": True, "arguments": {"x-max-length": 10, "x-dead-letter-exchange": "dlx"}})
    put(f"/queues/{vq}/q2", {"durable": False, "auto_delete": False})
    r = requests.post(f"{base}/bindings/{vq}/e/ex/q/q1", json={"routing_key": "a.#", "arguments": {"x-k": "v"}},
                      auth=auth, timeout=60)
    assert r.status_code == 201, r.text
    put(f"/policies/{vq}/lim", {"pattern": "^q2$", "definition": {"max-length": 5}, "priority": 1,
                                "apply-to": "queues"})
    # RabbitMQ's API shows a queue's counters only once its stats were emitted (every
    # 5 s by default); rabbitmqctl asks the queues directly.
    deadline = time.time() + 30
    while time.time() < deadline:
        qs = requests.get(f"{base}/queues/{vq}", auth=auth, timeout=60).json()
        stats = len(qs) == 2 and all("messages" in q and "state" in q for q in qs)
        if stats and any(q.get("policy") == "lim" for q in qs):
            break
        time.sleep(0.5)
    yield v
    requests.delete(f"{base}/vhosts/{vq}", auth=auth, timeout=60)


def same_listing(a, b, header=True):
    """Same info lines and header row, same rows in any order."""
    assert a.code == b.code == 0, (a, b)
    la, lb = a.lines, b.lines
    head_a = [line for line in la if "\t" not in line]
    head_b = [line for line in lb if "\t" not in line]
    rows_a = [line for line in la if "\t" in line]
    rows_b = [line for line in lb if "\t" in line]
    assert head_a == head_b
    if rows_a and header:
        assert rows_a[0] == rows_b[0]
    assert sorted(rows_a) == sorted(rows_b)


LISTINGS = [
    ["list_exchanges"],
    ["list_exchanges", "name", "type", "durable", "auto_delete", "internal", "arguments"],
    ["list_bindings"],
    ["list_queues"],
    ["list_queues", "name", "durable", "auto_delete", "exclusive", "arguments", "policy", "messages",
     "consumers", "state"],
    ["list_permissions"],
    ["list_policies"],
    ["list_consumers"],
]


@pytest.mark.parametrize("args", LISTINGS, ids=lambda a: " ".join(a))
def test_listings_print_as_rabbitmqctl(reference, ref_vhost, args):
    ours = reference.ctl(*args, "-p", ref_vhost)
    theirs = reference.rabbitmqctl(*args, "-p", ref_vhost)
    same_listing(ours, theirs)
    for flag in ("-q", "-s"):
        same_listing(reference.ctl(flag, *args, "-p", ref_vhost),
                     reference.rabbitmqctl(flag, *args, "-p", ref_vhost), header=flag == "-q")
    ours = json.loads(reference.ctl(*args, "-p", ref_vhost, "--formatter", "json").out)
    theirs = json.loads(reference.rabbitmqctl(*args, "-p", ref_vhost, "--formatter", "json").out)
    key = lambda d: json.dumps(d, sort_keys=True)  # noqa: E731
    assert sorted(ours, key=key) == sorted(theirs, key=key)


def test_changes_print_and_exit_as_rabbitmqctl(reference, ref_vhost, uniq):
    v = ref_vhost
    user = uniq("u")
    steps = [
        ["add_user", user, "pw"],
        ["add_user", user, "pw"],
        ["change_password", user, "pw2"],
        ["set_user_tags", user, "monitoring", "policymaker"],
        ["set_permissions", "-p", v, user, "^a", "^b", "^c"],
        ["set_permissions", "-p", uniq("nov"), user, ".*", ".*", ".*"],
        ["clear_permissions", "-p", v, user],
        ["set_policy", "-p", v, "--priority", "2", "--apply-to", "queues", "p1", "^x", '{"max-length":3}'],
        ["clear_policy", "-p", v, "p1"],
        ["clear_policy", "-p", v, "p1"],
        ["set_policy", "-p", uniq("nov"), "p1", "^x", '{"max-length":3}'],
        ["purge_queue", "-p", v, "q1"],
        ["purge_queue", "-p", v, "nosuchq"],
        ["delete_queue", "-p", v, "nosuchq"],
        ["delete_queue", "-p", v, "q2", "--if-unused"],
        ["delete_user", user],
        ["delete_user", user],
        ["change_password", user, "x"],
        ["set_user_tags", user, "x"],
        ["delete_vhost", uniq("nov")],
        ["list_queues", "nosuchcolumn"],
        ["set_policy", "p1"],
    ]
    for tool in ("rabbitmqctl", "warrenctl"):
        run = reference.rabbitmqctl if tool == "rabbitmqctl" else reference.ctl
        results = [run(*s) for s in steps]
        if tool == "rabbitmqctl":
            theirs = results
            # Put back what the steps removed, for warrenctl's turn.
            requests.put(f"{reference.http_url}/api/queues/{requests.utils.quote(v, safe='')}/q2",
                         json={"durable": False}, auth=(reference.user, reference.password), timeout=60)
        else:
            ours = results
    for step, a, b in zip(steps, ours, theirs):
        assert a.code == b.code, (step, a, b)
        # The informational lines match (usage errors print none); warrenctl names
        # itself in its advice.
        assert a.out.replace("warrenctl help", "rabbitmqctl help") == b.out, (step, a, b)
